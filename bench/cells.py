"""A grid's finished cells kept in git, so that a long grid resumes across machines that lose their run folders.

    python bench/cells.py restore bench/grids/NAME.toml    # before `genbench run --config ...`
    genbench run --config bench/grids/NAME.toml --seeds 1   # finished cells are skipped, the rest run
    python bench/cells.py save bench/grids/NAME.toml       # after the run (bench/collect.py does it too)

``save`` copies the small files of every finished cell of the grid (status.json, config.json, rows.json,
rows.csv, curves.csv, log.txt, the sample and real grids, task rows; never checkpoints, sample arrays or the
lock) from the grid's out folder to ``bench/cells/NAME/<run id>/``.  ``restore`` copies them back into
``<out>/runs/<run id>/`` where that folder does not already hold a finished cell, so `genbench run` skips the
cell (its status says "done" with the same config hash) and `genbench report` shows its rows, curves and
sample grids.  A restored cell has no checkpoint: ``genbench run --task`` on it needs the cell trained again.

The cells of a grid are the run ids `genbench run --config` plans for it on this machine's device (a run id
is the hash of the cell's identity, device included), so a CPU archive is not mistaken for a GPU run.

``recover RESULTS.json`` rebuilds archive entries from a stamped results file (bench/results/NAME.json) for
cells whose run folders were lost before ``save`` existed: rows.json from the file's rows, config.json from
planning the cell again (the run id must match the rows' config hash, else the cell is refused: its preset
changed and it must be trained again) and a status saying where the rows came from.  Such a cell has no
sample grid, curves or log.

Both ``save`` and ``restore`` also carry the grid's fitted feature extractors (``<out>/cache/extractors/``: the
classifier's weights, about 0.4 MB a data set) to and from ``bench/cells/NAME/_extractors/``.  A machine that
fits its own classifier gets weights that differ in the last bits (threads, CPU), so a different extractor hash,
and the report ranks its cells apart from the archived ones ("other classifier weights"); restored weights keep
every later seed on the same features.  An archived extractor is never replaced by a different one of the same
name: the cells already kept were scored with it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from genbench.data.base import DataError
from genbench.grid import GridError
from genbench.io import atomic_write_bytes, atomic_write_json
from genbench.locks import RunFolderBusy, RunLock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT  # noqa: E402

ARCHIVE = ROOT / "bench" / "cells"
#: never archived: weights and resumable state, raw sample arrays (large; the grids show the samples), the lock
SKIP_DIRS = {"checkpoints"}
SKIP_SUFFIXES = {".pt", ".npz", ".npy", ".tmp", ".corrupt"}
SKIP_NAMES = {"lock"}
#: the archive's folder for the grid's fitted feature extractors (not a cell: run ids never start with "_")
EXTRACTORS = "_extractors"


def kept_files(run_dir: Path) -> list[Path]:
    """The files of a run folder that the archive keeps, relative to it, sorted."""
    keep = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if (not path.is_file() or rel.parts[0] in SKIP_DIRS or path.suffix in SKIP_SUFFIXES
                or path.name in SKIP_NAMES or path.name.startswith(".")):
            continue
        keep.append(rel)
    return keep


def _status(run_dir: Path) -> dict[str, Any] | None:
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def is_finished(run_dir: Path, config_hash: str) -> bool:
    """Whether the folder holds a finished cell with this config hash and readable rows."""
    status = _status(run_dir)
    if not status or status.get("state") != "done" or status.get("config_hash") != config_hash:
        return False
    try:
        return isinstance(json.loads((run_dir / "rows.json").read_text()), list)
    except (OSError, ValueError):
        return False


def planned_cells(grid_path: str, device: str = "auto") -> tuple[Path, dict[str, str]]:
    """The grid's out folder and its cells as ``run id -> config hash`` (planned as `genbench run` would)."""
    from genbench.cli import grid_cells
    from genbench.plugins import get_registry
    from genbench.runner.cells import Runner

    registry = get_registry()
    specs, grid = grid_cells(registry, grid_path)
    out = Path(grid.out)
    runner = Runner(out, registry=registry, device=device, progress=False, extractors=grid.extractors)
    plans = [runner.plan(spec) for spec in specs]
    return out, {p.run_id: p.config_hash for p in plans}


def copy_tree(src: Path, dst: Path, files: list[Path]) -> None:
    """Copy ``files`` (relative) from ``src`` to ``dst``, each written atomically; status.json last, so an
    interrupted copy never looks finished."""
    for rel in sorted(files, key=lambda r: r.as_posix() == "status.json"):
        atomic_write_bytes(dst / rel, (src / rel).read_bytes())


def _extractor_files(folder: Path) -> list[Path]:
    """The fitted-extractor files of a folder, each checksum after the weights it covers (so an interrupted copy is
    caught by the checksum and fitted again, never trusted)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.suffix not in {".tmp", ".corrupt"}]
    return sorted(files, key=lambda p: (p.name.endswith(".sha256"), p.name))


def copy_extractors(src: Path, dst: Path) -> tuple[list[str], list[str]]:
    """Copy the fitted-extractor files of ``src`` into ``dst`` where absent; (names copied, names ``dst`` already
    holds with other bytes, left as they are)."""
    copied, differ = [], []
    for path in _extractor_files(src):
        target = dst / path.name
        data = path.read_bytes()
        if target.is_file():
            if target.read_bytes() != data:
                differ.append(path.name)
            continue
        atomic_write_bytes(target, data)
        copied.append(path.name)
    return copied, differ


def save_extractors(out: Path, target: Path) -> tuple[list[str], list[str]]:
    """``<out>/cache/extractors/*`` into the archive's ``target/_extractors/`` (an archived one is never replaced)."""
    return copy_extractors(out / "cache" / "extractors", target / EXTRACTORS)


def restore_extractors(source: Path, out: Path) -> tuple[list[str], list[str]]:
    """The archive's ``source/_extractors/*`` into ``<out>/cache/extractors/`` where absent (a machine's own fit
    there is left alone: its cells will be ranked apart)."""
    return copy_extractors(source / EXTRACTORS, out / "cache" / "extractors")


def _warn_differ(names: list[str], where: str) -> None:
    for name in names:
        if not name.endswith((".sha256", ".json")):
            print(f"warning: {name} differs from {where}; the report ranks cells scored with each apart "
                  "(delete this machine's copy and run `python bench/cells.py restore` to use the archived one)",
                  file=sys.stderr)


def save(grid_path: str, archive: Path = ARCHIVE, device: str = "auto") -> list[str]:
    """Archive the grid's finished cells (replacing an older copy of the same cell); the run ids saved."""
    out, cells = planned_cells(grid_path, device)
    target = archive / Path(grid_path).stem
    saved = []
    for run_id, digest in cells.items():
        run_dir = out / "runs" / run_id
        if not is_finished(run_dir, digest):
            continue
        files = kept_files(run_dir)
        status = _status(run_dir) or {}
        if status.get("restored_from"):  # came from the archive: nothing new to keep
            continue
        dst = target / run_id
        if dst.exists():
            shutil.rmtree(dst)
        copy_tree(run_dir, dst, files)
        saved.append(run_id)
    if saved:
        _warn_differ(save_extractors(out, target)[1], f"the archived {target / EXTRACTORS}")
    return saved


def restore(grid_path: str, archive: Path = ARCHIVE, device: str = "auto") -> tuple[list[str], list[str]]:
    """Copy archived cells of the grid into its out folder where no finished cell is; (restored, kept live)."""
    out, cells = planned_cells(grid_path, device)
    source = archive / Path(grid_path).stem
    _warn_differ(restore_extractors(source, out)[1], f"the archived copy in {source / EXTRACTORS}")
    restored, live = [], []
    for run_id, digest in cells.items():
        src = source / run_id
        if not is_finished(src, digest):
            continue
        run_dir = out / "runs" / run_id
        if is_finished(run_dir, digest):
            live.append(run_id)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            with RunLock(run_dir):  # a cell being trained right now is left alone
                files = [f for f in kept_files(src) if f.as_posix() != "status.json"]
                copy_tree(src, run_dir, files)
                status = _status(src) or {}
                shown = src.relative_to(ROOT) if src.is_relative_to(ROOT) else src
                atomic_write_json(run_dir / "status.json", {**status, "restored_from": str(shown)})
        except RunFolderBusy as exc:
            raise SystemExit(f"{run_dir}: {exc}") from None
        restored.append(run_id)
    return restored, live


def measured_rows(rows: list[dict]) -> list[dict]:
    """A results file's rows without the ones the report derives (FID / floor, KID - floor, FID test - train):
    a cell's rows.json holds measurements only, and the report derives those again; kept, they would count
    twice (two rows of one run: the mean's standard error shrinks by sqrt(2))."""
    from genbench.report.derived import DERIVED_METRICS

    return [r for r in rows if r.get("metric") not in DERIVED_METRICS]


def recover(results_path: str, grid_path: str, archive: Path = ARCHIVE, device: str = "auto") -> list[str]:
    """Archive entries rebuilt from a stamped results file's rows, for cells of the grid not archived yet."""
    from genbench.cli import grid_cells
    from genbench.plugins import get_registry
    from genbench.runner.cells import Runner

    result = json.loads(Path(results_path).read_text())
    commit = result.get("stamp", {}).get("commit", "unknown")
    by_run: dict[str, list[dict]] = {}
    for row in measured_rows(result.get("rows", [])):
        by_run.setdefault(row["run_id"], []).append(row)
    registry = get_registry()
    specs, grid = grid_cells(registry, grid_path)
    runner = Runner(Path(grid.out), registry=registry, device=device, progress=False, extractors=grid.extractors)
    target = archive / Path(grid_path).stem
    recovered = []
    for spec in specs:
        plan = runner.plan(spec)
        rows = by_run.get(plan.run_id)
        dst = target / plan.run_id
        if not rows or is_finished(dst, plan.config_hash):
            continue
        hashes = {r.get("config_hash") for r in rows}
        if hashes != {plan.config_hash}:
            raise SystemExit(f"{plan.run_id}: the rows' config hash {sorted(map(str, hashes))} is not the planned "
                             f"one; the preset changed, so train the cell again")
        shown = Path(results_path).resolve()
        shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
        note = (f"rows recovered from {shown} (stamped {commit}) after the run folder was lost; "
                "no sample grids, curves or log")
        atomic_write_json(dst / "rows.json", rows)
        atomic_write_json(dst / "config.json", {"identity": plan.identity, "config_hash": plan.config_hash,
                                                "versions": json.loads(rows[0].get("versions") or "{}"),
                                                "commit": f"{commit} (results stamp)", "grid": spec.grid,
                                                "recovered": note})
        atomic_write_json(dst / "status.json", {
            "run_id": plan.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed,
            "preset": spec.preset, "config_hash": plan.config_hash, "state": "done", "recovered": note})
        recovered.append(plan.run_id)
    return recovered


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["save", "restore", "recover"])
    ap.add_argument("grid", help="the grid file (bench/grids/NAME.toml)")
    ap.add_argument("--results", help="recover: the stamped results file (bench/results/NAME.json)")
    ap.add_argument("--archive", default=str(ARCHIVE), help="the archive folder (default: bench/cells)")
    ap.add_argument("--device", default="auto", help="the device the cells were planned for (default: auto)")
    args = ap.parse_args(argv)
    archive = Path(args.archive)
    try:
        if args.action == "save":
            ids = save(args.grid, archive, args.device)
            print(f"saved {len(ids)} finished cell(s) to {archive / Path(args.grid).stem}: " + ", ".join(ids))
        elif args.action == "restore":
            ids, live = restore(args.grid, archive, args.device)
            print(f"restored {len(ids)} cell(s)" + (": " + ", ".join(ids) if ids else "")
                  + (f"; {len(live)} already finished here" if live else ""))
        else:
            if not args.results:
                raise SystemExit("recover needs --results bench/results/NAME.json (the stamped file holding the rows)")
            ids = recover(args.results, args.grid, archive, args.device)
            print(f"recovered {len(ids)} cell(s) from {args.results}: " + ", ".join(ids))
    except (GridError, DataError) as exc:  # a bad grid, or its data set missing here: one line, nothing touched
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
