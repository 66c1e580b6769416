"""Kill `genbench run` / `genbench report` with SIGKILL at random moments, rerun each time, compare with an
uninterrupted run.

    python bench/chaos/chaos.py [--kills 10] [--seed 0] [--work /tmp/genbench-chaos] [--keep]

A small grid of tiny cells (DDPM, VAE, the per-pixel baseline; a few hundred steps, checkpoints every 25 steps)
runs once without interruption (the reference), then again into a fresh folder while this script kills it.
Kills are aimed, in a random order per cell, at five moments: training (after a random number of checkpoints and
a random delay), a checkpoint write (the moment a checkpoint's temporary file appears), sampling (right after
the last training checkpoint), scoring (a random delay after the first metric starts) and the report (`genbench
report` killed a random time into its work).  After each kill the same command runs again; after the last one it
runs to the end.  Should the grid finish before an aimed moment comes, its rows are compared and it starts
again from nothing.  Printed (and written to ``<work>/chaos.json``): kills by moment, kills that caught a file
half-written (its temporary file left behind), resumes from a checkpoint, cells that had to restart from step 0,
rows lost and quality rows (their value; timings excluded) differing from the reference (goal 0 and 0), and
standard errors differing (reported, not a goal).  A grid of 150 steps (max_steps=150 below) is what ``aim``
waits for at the end of training.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GRID = ["--models", "ddpm,vae,independent", "--preset", "tiny", "--seeds", "0", "--set", "max_steps=150",
        "--set", "eval_every=50", "--set", "n_samples=300", "--set", "sample_batch_size=100",
        "--checkpoint-every-steps", "25", "--no-progress", "--no-report"]
TIMING = {"images_per_second", "latency", "train_seconds", "peak_memory_mib"}
MOMENTS = ["training", "checkpoint write", "sampling", "scoring", "report"]


def run_cmd(out: Path) -> list[str]:
    return [str(BIN / "genbench"), "run", *GRID, "--out", str(out)]


def report_cmd(out: Path) -> list[str]:
    return [str(BIN / "genbench"), "report", str(out), "--out", str(out)]


def launch(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def quality(rows: list[dict], column: str = "value") -> dict[tuple, tuple]:
    """(run, metric, sampler, kind, reference, sampling seed, extractor) -> the rows' ``column``, timings excluded."""
    out: dict[tuple, list] = {}
    for r in rows:
        if r["metric"] in TIMING or "second" in r["metric"]:
            continue
        key = (r["run_id"], r["metric"], r["sampler"], r["kind"], r["reference"], r["sampling_seed"], r["extractor"])
        out.setdefault(key, []).append(r[column])
    return {k: tuple(sorted(v, key=repr)) for k, v in out.items()}


def all_rows(out: Path) -> list[dict]:
    rows = []
    for status in sorted(out.glob("runs/*/status.json")):
        if json.loads(status.read_text()).get("state") == "done":
            rows += json.loads((status.parent / "rows.json").read_text())
    return rows


def active_cell(out: Path, pid: int) -> Path | None:
    """The run folder the process ``pid`` is writing (its status says running, with that pid)."""
    for status in out.glob("runs/*/status.json"):
        try:
            s = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        if s.get("state") == "running" and s.get("pid") == pid:
            return status.parent
    return None


def log_sizes(out: Path) -> dict[str, int]:
    """How far each run folder's log.txt goes now (what a new attempt writes comes after)."""
    return {p.parent.name: p.stat().st_size for p in out.glob("runs/*/log.txt")}


def new_lines(run_dir: Path, since: dict[str, int]) -> list[str]:
    """Log lines of ``run_dir`` written after the offsets ``since``."""
    try:
        with open(run_dir / "log.txt", "rb") as fh:
            fh.seek(since.get(run_dir.name, 0))
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def attempts(out: Path, since: dict[str, int]) -> tuple[int, int]:
    """(resumes from a checkpoint, restarts from step 0 of a cell an earlier attempt had started) since ``since``."""
    resumed = restarted = 0
    for run_dir in out.glob("runs/*"):
        text = "\n".join(new_lines(run_dir, since))
        if " started (pid " not in text:
            continue
        if " resumed " in text:
            resumed += 1
        elif run_dir.name in since:
            restarted += 1
    return resumed, restarted


def partial_writes(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))


def aim(proc: subprocess.Popen, out: Path, moment: str, rng: random.Random, started: dict[str, int]) -> str | None:
    """Wait for ``moment`` in the cell ``proc`` is working on and kill it there; None if the run ended first."""
    checkpoints_seen, want_checkpoints = 0, rng.randint(0, 2)
    while proc.poll() is None:
        cell = active_cell(out, proc.pid)
        if cell is None:
            time.sleep(0.005)
            continue
        lines = new_lines(cell, started)
        text = "\n".join(lines)
        training = "started" in text and " sampler " not in text and " metric " not in text
        if moment == "checkpoint write" and training:
            ckpt = cell / "checkpoints"
            while proc.poll() is None:
                if ckpt.is_dir() and any(p.name.endswith(".tmp") for p in os.scandir(ckpt)):
                    break
                time.sleep(0.0002)
        elif moment == "training" and training:
            checkpoints_seen = text.count("checkpoint last.pt")
            if checkpoints_seen < want_checkpoints:
                time.sleep(0.01)
                continue
            time.sleep(rng.uniform(0.0, 0.3))
        elif moment == "sampling" and " sampler " not in text and " metric " not in text:
            if text.count("checkpoint last.pt at step 150") < 2:  # the periodic one, then the end of training's
                time.sleep(0.002)
                continue
            time.sleep(rng.uniform(0.0, 0.05))
        elif moment == "scoring" and " metric " in text:
            time.sleep(rng.uniform(0.0, 1.5))
        else:
            time.sleep(0.01)
            continue
        if proc.poll() is not None:
            return None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return cell.name
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/genbench-chaos")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "commands.log"

    t0 = time.perf_counter()
    reference = work / "reference"
    for cmd in (run_cmd(reference), report_cmd(reference)):
        if launch(cmd, log).wait() != 0:
            sys.exit(f"the uninterrupted run failed; see {log}")
    t_reference = time.perf_counter() - t0
    ref_rows = all_rows(reference)

    out = work / "chaos"
    plan = []  # the moments, per cell in a random order; the report somewhere among them
    while len(plan) < args.kills:
        plan += rng.sample(MOMENTS, len(MOMENTS))
    plan = plan[: args.kills]
    kills: list[dict] = []
    tally = {"rows_lost": 0, "quality_rows_differing": 0, "quality_stderrs_differing": 0, "quality_rows_compared": 0}
    examples: list[list] = []
    exit_codes: list[int] = []  # of the runs and reports that were not killed
    resumes = restarts = grids = 0

    def settle() -> None:
        """Compare a finished grid's rows with the reference's and add them to the tally."""
        nonlocal grids
        grids += 1
        rows = all_rows(out)
        got, want = quality(rows), quality(ref_rows)
        got_se, want_se = quality(rows, "stderr"), quality(ref_rows, "stderr")
        lost = sorted(set(want) - set(got))
        differing = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        tally["rows_lost"] += len(lost)
        tally["quality_rows_differing"] += len(differing)
        tally["quality_stderrs_differing"] += sum(want_se[k] != got_se[k] for k in set(want_se) & set(got_se))
        tally["quality_rows_compared"] += len(want)
        examples.extend([["lost", *k] for k in lost[:5]] + [["differing", *k, want[k], got[k]] for k in differing[:5]])

    t1 = time.perf_counter()
    for moment in plan:
        before = set(partial_writes(out)) if out.exists() else set()
        while True:
            started = log_sizes(out)
            if moment == "report":
                if not list(out.glob("runs/*/status.json")):  # a report needs a run folder
                    exit_codes.append(launch(run_cmd(out), log).wait())
                proc = launch(report_cmd(out), log)
                time.sleep(rng.uniform(0.5, 3.0))
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    where = "report"
                    break
                exit_codes.append(proc.returncode)
                continue  # finished before the kill: try again with another delay
            proc = launch(run_cmd(out), log)
            where = aim(proc, out, moment, rng, started)
            r, s = attempts(out, started)
            resumes, restarts = resumes + r, restarts + s
            if where is not None:
                break
            # the grid finished before that moment came: score it, then start it again from nothing
            exit_codes.append(proc.returncode)
            settle()
            shutil.rmtree(out)
        caught = sorted(set(partial_writes(out)) - before)
        kills.append({"moment": moment, "cell": where, "partial_writes": caught})
        print(f"kill {len(kills):2d}: {moment:<16} in {where}  half-written: {caught or '-'}", flush=True)
    started = log_sizes(out)
    exit_codes += [launch(run_cmd(out), log).wait(), launch(report_cmd(out), log).wait()]
    r, s = attempts(out, started)
    resumes, restarts = resumes + r, restarts + s
    settle()
    t_chaos = time.perf_counter() - t1
    summary = {
        "kills": len(kills), "by_moment": {m: sum(k["moment"] == m for k in kills) for m in MOMENTS},
        "kills_mid_write": sum(bool(k["partial_writes"]) for k in kills), "resumes_from_checkpoint": resumes,
        "cells_restarted_from_step_0": restarts, "grids_finished_and_compared": grids,
        "rows_reference": len(ref_rows), **tally, "exit_codes_not_killed": exit_codes,
        "partial_writes_left": partial_writes(out), "seconds_reference": round(t_reference, 1),
        "seconds_chaos": round(t_chaos, 1), "kill_log": kills, "examples": examples,
    }
    (work / "chaos.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("kill_log", "examples")}, indent=2))
    print("\n| kills | resumes | cells recomputed from step 0 | rows lost | quality rows differing |")
    print("|---|---|---|---|---|")
    print(f"| {len(kills)} ({', '.join(f'{m} {n}' for m, n in summary['by_moment'].items())}) | {resumes} | {restarts} "
          f"| {tally['rows_lost']} | {tally['quality_rows_differing']} of {tally['quality_rows_compared']} |")
    if not args.keep:
        shutil.rmtree(work / "reference", ignore_errors=True)
    if any(exit_codes) or tally["rows_lost"] or tally["quality_rows_differing"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
