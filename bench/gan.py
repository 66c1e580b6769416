"""GAN benchmark on digits: FID vs the real-data floor and mode coverage.

Two modes (both CPU-friendly; wrap in ``flock /tmp/genbench-cpu.lock`` on the shared machine):

  .venv/bin/python bench/gan.py run   [--preset standard] [--set KEY=VALUE ...]
      One genbench cell (the real Runner: same batches, budget, sampling, quantisation and
      metrics as ``genbench run``), then the class histogram of its samples under the data
      set's feature classifier.  Checks the targets FID <= 2.5 x floor and every class >= 5%.
      Writes bench/results/gan_<preset>.json and .md.

  .venv/bin/python bench/gan.py curve [--preset quick] [--steps N] [--every K] [--set KEY=VALUE ...]
      Trains with the runner's batch order and evaluates every K steps: FID and class coverage
      of the EMA generator and of the raw generator, with training seconds.  This is how the
      quick recipe was chosen.  Writes bench/results/gan_curve_<tag>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genbench_gan
from genbench.config import parse_overrides, resolve_config
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner, Trainer
from genbench_gan import GAN

from bench_common import RESULTS, write  # noqa: E402
FID_FACTOR = 2.5
MIN_SHARE = 0.05


def class_histogram(extractor, unit_images: torch.Tensor, k: int) -> dict:
    """Share of each class (argmax of the classifier), label entropy (bits) and the rarest share."""
    label = extractor.probabilities(unit_images).argmax(-1)
    share = torch.bincount(label, minlength=k).double() / len(label)
    nz = share[share > 0]
    return {
        "shares": [round(float(s), 4) for s in share],
        "entropy_bits": float(-(nz * nz.log2()).sum()),
        "max_entropy_bits": math.log2(k),
        "min_share": float(share.min()),
        "classes_at_5pct": int((share >= MIN_SHARE).sum()),
    }


def registry():
    return build_registry(extra=[genbench_gan], autoload=False)


# ---------------------------------------------------------------------------------- run
def run_mode(args) -> dict:
    out = Path(args.out or tempfile.mkdtemp(prefix="gan-bench-"))
    runner = Runner(out_dir=out, registry=registry(), device=args.device, progress=False)
    overrides = parse_overrides(args.set)
    t0 = time.perf_counter()
    res = runner.run_cell(CellSpec("gan", "digits", args.seed, args.preset, overrides))
    wall = time.perf_counter() - t0
    if res.state == "failed":
        raise SystemExit(f"cell failed: {res.error}")
    rows = {(r["metric"], r.get("sampler", "")): r for r in res.rows}
    value = {m: r["value"] for (m, _), r in rows.items()}
    data = runner.load_data("digits")
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device)
    samples = sorted((res.run_dir / "samples").glob("*.npz"))
    levels = torch.from_numpy(np.load(samples[0])["samples"])
    hist = class_histogram(ext, data.spec.to_unit(levels), int(data.num_classes))
    test_hist = class_histogram(ext, data.unit("test"), int(data.num_classes))
    fid, floor = value["fid"], value["fid_floor"]
    result = {
        "command": "python bench/gan.py run " + " ".join(sys.argv[2:]),
        "preset": args.preset, "overrides": overrides, "seed": args.seed, "run_dir": str(res.run_dir),
        "config": json.loads((res.run_dir / "config.json").read_text())["identity"]["config"],
        "cell_wall_seconds": wall, "train_seconds": value.get("train_seconds"), "train_steps": value.get("train_steps"),
        "n_samples": int(len(levels)), "sampler": samples[0].stem,
        "fid": fid, "fid_floor": floor, "fid_ratio": fid / floor,
        "extractor": {"name": ext.name, "sha256": ext.sha256, "test_accuracy": ext.accuracy},
        "classes": hist, "classes_test_split": test_hist,
        "runner_metrics": {k: value[k] for k in ("class_entropy", "min_class_share", "confident_share") if k in value},
        "targets": {
            f"fid <= {FID_FACTOR} x floor": fid <= FID_FACTOR * floor,
            f"every class >= {MIN_SHARE:.0%}": hist["min_share"] >= MIN_SHARE,
        },
    }
    tag = f"gan_{args.preset}" + (f"_{args.tag}" if args.tag else "")
    write(result, tag, run_markdown(result))
    return result


def run_markdown(r: dict) -> str:
    lines = [
        f"# GAN on digits, preset `{r['preset']}` (seed {r['seed']})", "",
        f"Command: `{r['command']}`", "",
        f"Trained {r['train_steps']:.0f} steps in {r['train_seconds']:.0f} s; cell wall time {r['cell_wall_seconds']:.0f} s; "
        f"{r['n_samples']} samples from `{r['sampler']}`.", "",
        "| metric | value | target | met |", "|---|---|---|---|",
        f"| FID (classifier features, vs test) | {r['fid']:.3f} | <= {FID_FACTOR} x floor = {FID_FACTOR * r['fid_floor']:.3f} "
        f"| {r['targets'][f'fid <= {FID_FACTOR} x floor']} |",
        f"| FID floor (real vs test) | {r['fid_floor']:.3f} | | |",
        f"| FID / floor | {r['fid_ratio']:.2f} | <= {FID_FACTOR} | |",
        f"| rarest class share | {r['classes']['min_share']:.3f} | >= {MIN_SHARE} | {r['targets'][f'every class >= {MIN_SHARE:.0%}']} |",
        f"| class entropy (bits) | {r['classes']['entropy_bits']:.3f} (max {r['classes']['max_entropy_bits']:.3f}; "
        f"test split {r['classes_test_split']['entropy_bits']:.3f}) | | |", "",
        "Class shares of the samples (test split in brackets):", "",
        "| class | " + " | ".join(str(i) for i in range(len(r["classes"]["shares"]))) + " |",
        "|---" * (len(r["classes"]["shares"]) + 1) + "|",
        "| share | " + " | ".join(f"{s:.3f} ({t:.3f})" for s, t in zip(r["classes"]["shares"], r["classes_test_split"]["shares"])) + " |",
        "", f"Extractor: {r['extractor']['name']} (test accuracy {r['extractor']['test_accuracy']:.3f}, "
        f"sha256 {r['extractor']['sha256'][:12]}).", "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- curve
def curve_mode(args) -> dict:
    reg = registry()
    runner = Runner(out_dir=Path(tempfile.mkdtemp(prefix="gan-curve-")), registry=reg, device=args.device, progress=False)
    data = runner.load_data("digits")
    overrides = parse_overrides(args.set)
    config = resolve_config(GAN, args.preset, data.spec, overrides)
    steps = args.steps or config.max_steps
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = GAN(config, data.spec, runner.device)
    trainer = Trainer(model, data, config, args.seed, runner.out_dir, runner.device, False)
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device)
    test = data.unit("test")
    k = int(data.num_classes)
    pool = data.reference_pool()
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(args.seed))[: args.n_samples]
    floor = fid_between(ext, test, data.spec.to_unit(pool[perm]))
    x_train = data.unit("train")
    points, seconds = [], 0.0
    model.train(True)
    while model.step < steps:
        t0 = time.perf_counter()
        losses = model.train_step(trainer.batch(model.step, x_train).to(runner.device))
        model.step += 1
        seconds += time.perf_counter() - t0
        if not all(math.isfinite(v) for v in losses.values()):
            points.append({"step": model.step, "diverged": losses})
            break
        if model.step % args.every == 0 or model.step == steps:
            point = {"step": model.step, "train_seconds": round(seconds, 2), **{k2: round(v, 4) for k2, v in losses.items()}}
            for use_ema in (True, False):
                model.config.use_ema = use_ema
                model.train(False)
                t1 = time.perf_counter()
                with torch.inference_mode():
                    x = model.sample(args.n_samples, generator=torch.Generator().manual_seed(args.seed * 7919 + 1))
                x = data.spec.to_unit(data.spec.quantise(x.cpu()))
                tag = "ema" if use_ema else "raw"
                point[f"{tag}_sample_seconds"] = round(time.perf_counter() - t1, 3)
                point[f"{tag}_fid"] = round(fid_between(ext, test, x), 4)
                h = class_histogram(ext, x, k)
                point[f"{tag}_entropy"] = round(h["entropy_bits"], 4)
                point[f"{tag}_min_share"] = round(h["min_share"], 4)
                point[f"{tag}_classes_5pct"] = h["classes_at_5pct"]
            model.config.use_ema = config.use_ema
            model.train(True)
            points.append(point)
            print(json.dumps(point), flush=True)
    result = {
        "command": "python bench/gan.py curve " + " ".join(sys.argv[2:]),
        "preset": args.preset, "overrides": overrides, "seed": args.seed, "config": config.to_dict(),
        "n_samples": args.n_samples, "fid_floor": floor, "points": points,
    }
    tag = "gan_curve_" + (args.tag or args.preset)
    lines = [f"# GAN training curve on digits ({args.preset}, seed {args.seed})", "",
             f"Command: `{result['command']}`", "", f"FID floor (real vs test, n={args.n_samples}): {floor:.3f}", "",
             "| step | train s | FID G-EMA | FID G | rarest class G-EMA | rarest class G | classes >=5% G-EMA | classes >=5% G | "
             "entropy G-EMA | D acc real | D acc fake |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        if "diverged" in p:
            lines.append(f"| {p['step']} | diverged: {p['diverged']} |")
            continue
        lines.append(f"| {p['step']} | {p['train_seconds']:.0f} | {p['ema_fid']:.2f} | {p['raw_fid']:.2f} | {p['ema_min_share']:.3f} | "
                     f"{p['raw_min_share']:.3f} | {p['ema_classes_5pct']} | {p['raw_classes_5pct']} | {p['ema_entropy']:.3f} | "
                     f"{p['d_acc_real']:.2f} | {p['d_acc_fake']:.2f} |")
    write(result, tag, "\n".join(lines) + "\n")
    return result



def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for name, default_preset in (("run", "standard"), ("curve", "quick")):
        s = sub.add_parser(name)
        s.add_argument("--preset", default=default_preset)
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--device", default="cpu")
        s.add_argument("--tag", default="", help="suffix of the result files")
        if name == "run":
            s.add_argument("--out", default=None, help="genbench output folder (default: a temporary one)")
        else:
            s.add_argument("--steps", type=int, default=None)
            s.add_argument("--every", type=int, default=500)
            s.add_argument("--n-samples", type=int, default=1000)
    args = p.parse_args(argv)
    (run_mode if args.mode == "run" else curve_mode)(args)


if __name__ == "__main__":
    main()
