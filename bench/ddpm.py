"""DDPM benchmark on digits: FID of ancestral / DDIM-50 / DDIM-20 over several sampling seeds beside the
real-data floor, the negative-VLB bits/dim and sampling speed (issue 3).

Two modes (CPU-friendly; wrap in ``flock /tmp/genbench-cpu.lock`` on the shared machine):

  .venv/bin/python bench/ddpm.py run [--preset standard] [--sampling-seeds 3] [--set KEY=VALUE ...]
      One genbench cell through the real Runner (same batches, budget, validation-selected checkpoint,
      sampling, quantisation and metrics as ``genbench run``; its rows give seed 0, bits/dim, images/s, NFE),
      then the selected checkpoint samples ``n_samples`` images per sampler for further sampling seeds;
      FID (data set's classifier features, vs the test split) per seed, and the floor (real images outside
      the test split vs test) over as many random subsets.  Targets: ancestral FID <= 1.5 x floor,
      DDIM-50 <= 2 x floor.  Writes bench/results/ddpm_<preset>[_<tag>].json and .md.

  .venv/bin/python bench/ddpm.py curve [--preset quick] [--every-seconds 30] [--set KEY=VALUE ...]
      Trains with the runner's batch order and, every so many training seconds, samples with one sampler
      (EMA weights): FID, share classified with confidence >= 0.9.  How the quick recipe was chosen.
      Writes bench/results/ddpm_curve_<tag>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genbench_ddpm
from genbench.config import parse_overrides, resolve_config
from genbench.io import load_checkpoint
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner, Trainer
from genbench_ddpm import DDPM

from bench_common import RESULTS, details, draw, stats, write  # noqa: E402  (bench/ is on sys.path when run as a script)

TARGETS = {"ancestral": 1.5, "DDIM-50": 2.0}
CONFIDENCE = 0.9


def registry():
    return build_registry(extra=[genbench_ddpm], autoload=False)



def confident_share(ext, x: torch.Tensor) -> float:
    return float((ext.probabilities(x).max(-1).values >= CONFIDENCE).double().mean())


# ---------------------------------------------------------------------------------- run
def run_mode(args) -> dict:
    out = Path(args.out or tempfile.mkdtemp(prefix="ddpm-bench-"))
    runner = Runner(out_dir=out, registry=registry(), device=args.device, progress=False)
    overrides = parse_overrides(args.set)
    t0 = time.perf_counter()
    res = runner.run_cell(CellSpec("ddpm", "digits", args.seed, args.preset, overrides))
    cell_wall = time.perf_counter() - t0
    if res.state == "failed":
        raise SystemExit(f"cell failed: {res.error}")
    rows = res.rows
    data = runner.load_data("digits")
    config = resolve_config(DDPM, args.preset, data.spec, overrides)
    model = DDPM(config, data.spec, runner.device)
    ckpt = res.run_dir / "checkpoints" / "best.pt"
    model.load_state_dict(load_checkpoint(ckpt if ckpt.exists() else res.run_dir / "checkpoints" / "last.pt",
                                          runner.device)["model"])
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device)
    test, pool = data.unit("test"), data.reference_pool()

    def row(metric: str, sampler: str = "") -> dict | None:
        hits = [r for r in rows if r["metric"] == metric and (not sampler or r.get("sampler") == sampler)]
        return hits[0] if hits else None

    samplers = []
    for i, steps in enumerate(config.sample_steps):
        label = model.sampler_name(steps)
        fids = [row("fid", label)["value"]]
        conf = [row("confident_share", label)["value"]] if row("confident_share", label) else []
        seconds = [config.n_samples / row("images_per_second", label)["value"]]
        n_seeds = args.sampling_seeds
        if steps is None or steps >= config.T:
            n_seeds = min(n_seeds, args.ancestral_seeds or n_seeds)
        for j in range(1, n_seeds):
            x, sec = draw(model, config.n_samples, config.sample_batch_size, steps, 1_000_003 * j + 17 * i + 1, data.spec)
            fids.append(fid_between(ext, test, x))
            conf.append(confident_share(ext, x))
            seconds.append(sec)
            print(f"{label} seed {j}: FID {fids[-1]:.3f}, confident {conf[-1]:.3f}, {sec:.1f}s", flush=True)
        samplers.append({
            "sampler": label, "steps": steps, "nfe": row("nfe", label)["value"], "fid": stats(fids),
            "confident_share": stats(conf), "images_per_second": [config.n_samples / s for s in seconds],
            "batch_size": min(config.sample_batch_size, config.n_samples),
            "flops_per_image": (row("flops_per_image", label) or {}).get("value"),
            "latency_one_image_s": (row("latency", label) or {}).get("value"),
        })
    floors = [row("fid_floor")["value"]]
    n_floor = int(row("fid_floor")["n"])
    for j in range(1, args.sampling_seeds):
        perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + j))[:n_floor]
        floors.append(fid_between(ext, test, data.spec.to_unit(pool[perm])))
    floor = stats(floors)
    real_conf = {"test": confident_share(ext, test), "reference pool": confident_share(ext, data.spec.to_unit(pool))}
    for s in samplers:
        s["fid_over_floor"] = s["fid"]["mean"] / floor["mean"]
        kind = "ancestral" if s["sampler"].startswith("ancestral") else s["sampler"]
        if kind in TARGETS:
            s["target"] = f"<= {TARGETS[kind]} x floor"
            s["target_met"] = s["fid_over_floor"] <= TARGETS[kind]
    bpd = row("bits_per_dim")
    result = {
        "command": "python bench/ddpm.py run " + " ".join(sys.argv[2:]),
        "preset": args.preset, "overrides": overrides, "seed": args.seed, "run_dir": str(res.run_dir),
        "config": config.to_dict(), "cell_wall_seconds": cell_wall,
        "train_seconds": row("train_seconds")["value"], "train_steps": row("train_steps")["value"],
        "parameters": row("parameters")["value"],
        "selected_step": details(row("val_bits_per_dim")).get("selected_step"),
        "val_bits_per_dim": (row("val_bits_per_dim") or {}).get("value"),
        "bits_per_dim": {"value": bpd["value"], "stderr": bpd["stderr"], "kind": bpd["kind"], "details": details(bpd)},
        "n_samples": config.n_samples, "sampling_seeds": args.sampling_seeds,
        "fid_floor": floor, "fid_floor_n": n_floor, "samplers": samplers, "confident_share_real": real_conf,
        "extractor": {"name": ext.name, "sha256": ext.sha256, "test_accuracy": ext.accuracy},
        "torch_threads": torch.get_num_threads(),
    }
    tag = f"ddpm_{args.preset}" + (f"_{args.tag}" if args.tag else "")
    write(result, tag, run_markdown(result))
    return result


def run_markdown(r: dict) -> str:
    f = r["fid_floor"]
    lines = [
        f"# DDPM on digits, preset `{r['preset']}` (training seed {r['seed']})", "",
        f"Command: `flock /tmp/genbench-cpu.lock .venv/bin/{r['command']}`", "",
        f"{r['parameters'] / 1e6:.2f}M parameters, trained {r['train_steps']:.0f} steps in {r['train_seconds']:.0f} s "
        f"({r['torch_threads']} CPU threads, shared machine: timings are noisy); checkpoint selected at step "
        f"{r['selected_step']} by validation VLB; cell wall time {r['cell_wall_seconds']:.0f} s.", "",
        f"Negative VLB on the test split: **{r['bits_per_dim']['value']:.4f} ± {r['bits_per_dim']['stderr']:.4f} bits/dim** "
        f"({r['bits_per_dim']['kind']}, {r['bits_per_dim']['details']}).", "",
        f"FID: {r['extractor']['name']} features (test accuracy {r['extractor']['test_accuracy']:.3f}, sha256 "
        f"{r['extractor']['sha256'][:12]}), {r['n_samples']} samples vs the test split, mean ± sd over "
        f"{r['sampling_seeds']} sampling seeds (values listed per sampler).  Floor: {r['fid_floor_n']} real images (validation + train) vs test, "
        f"{r['sampling_seeds']} random subsets: **{f['mean']:.3f} ± {f['sd']:.3f}**.", "",
        f"Confident share (classifier confidence >= {CONFIDENCE}) of real images: test split "
        f"{r['confident_share_real']['test']:.3f}, validation + train {r['confident_share_real']['reference pool']:.3f}.", "",
        "| sampler | NFE | FID | FID / floor | target | met | confident share | images/s (batch) | FLOP/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in r["samplers"]:
        ips = statistics.fmean(s["images_per_second"])
        flops = f"{s['flops_per_image']:.3g}" if s.get("flops_per_image") else "—"
        lines.append(
            f"| {s['sampler']} | {s['nfe']:.0f} | {s['fid']['mean']:.3f} ± {s['fid']['sd']:.3f} "
            f"({', '.join(f'{v:.2f}' for v in s['fid']['values'])}) | {s['fid_over_floor']:.2f} | {s.get('target', '')} | "
            f"{s.get('target_met', '')} | {s['confident_share']['mean']:.3f} | {ips:.2f} ({s['batch_size']}) | {flops} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- curve
def curve_mode(args) -> dict:
    runner = Runner(out_dir=Path(tempfile.mkdtemp(prefix="ddpm-curve-")), registry=registry(), device=args.device,
                    progress=False)
    data = runner.load_data("digits")
    overrides = parse_overrides(args.set)
    config = resolve_config(DDPM, args.preset, data.spec, overrides)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = DDPM(config, data.spec, runner.device)
    trainer = Trainer(model, data, config, args.seed, runner.out_dir, runner.device, False)
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device)
    test, pool = data.unit("test"), data.reference_pool()
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(args.seed))[: args.n_samples]
    floor = fid_between(ext, test, data.spec.to_unit(pool[perm]))
    real_conf = confident_share(ext, test)
    x_train = data.unit("train")
    samplers = [(int(a.split(":")[0]), float(a.split(":")[1]) if ":" in a else config.ddim_eta)
                for a in args.samplers.split(",")]  # "50,100:1" = DDIM-50 (config eta), DDIM-100 eta=1
    points, seconds, next_eval = [], 0.0, args.every_seconds
    budget = 60 * (args.minutes or config.max_minutes or 5)
    max_steps = config.max_steps or 10**9
    model.train(True)
    while seconds < budget and model.step < max_steps:
        t0 = time.perf_counter()
        losses = model.train_step(trainer.batch(model.step, x_train).to(runner.device))
        model.step += 1
        seconds += time.perf_counter() - t0
        if not all(math.isfinite(v) for v in losses.values()):
            points.append({"step": model.step, "diverged": losses})
            break
        if seconds >= next_eval or seconds >= budget or model.step >= max_steps:
            next_eval += args.every_seconds
            point = {"step": model.step, "train_seconds": round(seconds, 1), "loss": round(losses["loss"], 4),
                     "lr": model.lr_at(model.step), "samplers": {}}
            for steps, eta in samplers:
                model.config.ddim_eta = eta
                x, sec = draw(model, args.n_samples, 500, steps, args.seed * 7919 + 1, data.spec)
                point["samplers"][model.sampler_name(steps)] = {
                    "sample_seconds": round(sec, 1), "fid": round(fid_between(ext, test, x), 3),
                    "confident_share": round(confident_share(ext, x), 3)}
            model.config.ddim_eta = config.ddim_eta
            model.train(True)
            points.append(point)
            print(json.dumps(point), flush=True)
    if args.save:
        torch.save(model.state_dict(), args.save)
    result = {
        "command": "python bench/ddpm.py curve " + " ".join(sys.argv[2:]),
        "preset": args.preset, "overrides": overrides, "seed": args.seed, "config": config.to_dict(),
        "n_samples": args.n_samples, "fid_floor": floor, "confident_share_test_split": real_conf, "points": points,
        "parameters": model.count_parameters(), "torch_threads": torch.get_num_threads(),
    }
    tag = "ddpm_curve_" + (args.tag or args.preset)
    lines = [f"# DDPM training curve on digits ({args.preset}, seed {args.seed})", "",
             f"Command: `flock /tmp/genbench-cpu.lock .venv/bin/{result['command']}`", "",
             f"{result['parameters'] / 1e6:.2f}M parameters; samples from the EMA weights, "
             f"{args.n_samples} per sampler; FID floor (real vs test, n={args.n_samples}): {floor:.3f}; confident share of the "
             f"real test split: {real_conf:.3f}.  Training seconds "
             "exclude evaluation; the machine is shared, so they are noisy.", "",
             "| step | train s | loss | lr | sampler | FID | FID/floor | confident share | sampling s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        if "diverged" in p:
            lines.append(f"| {p['step']} | diverged: {p['diverged']} |")
            continue
        for name, m in p["samplers"].items():
            lines.append(f"| {p['step']} | {p['train_seconds']:.0f} | {p['loss']:.4f} | {p['lr']:.2e} | {name} | {m['fid']:.2f} | "
                         f"{m['fid'] / floor:.2f} | {m['confident_share']:.3f} | {m['sample_seconds']:.1f} |")
    write(result, tag, "\n".join(lines) + "\n")
    return result



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("run", "curve"):
        s = sub.add_parser(name)
        s.add_argument("--preset", default="standard" if name == "run" else "quick")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--device", default="cpu")
        s.add_argument("--tag", default="")
    sub.choices["run"].add_argument("--sampling-seeds", type=int, default=3)
    sub.choices["run"].add_argument("--ancestral-seeds", type=int, default=None,
                                    help="fewer sampling seeds for the (1000-NFE) ancestral sampler, when time is short")
    sub.choices["run"].add_argument("--out", default=None, help="runner output folder (default: a temp folder)")
    c = sub.choices["curve"]
    c.add_argument("--every-seconds", type=float, default=30.0)
    c.add_argument("--minutes", type=float, default=None)
    c.add_argument("--n-samples", type=int, default=500)
    c.add_argument("--samplers", default="50", help="comma-separated STEPS[:ETA] (DDIM; STEPS >= T is ancestral)")
    c.add_argument("--save", default=None, help="save the final model state here")
    args = p.parse_args()
    (run_mode if args.mode == "run" else curve_mode)(args)


if __name__ == "__main__":
    main()
