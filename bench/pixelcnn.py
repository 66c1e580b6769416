"""Gated PixelCNN benchmark on digits (issue 6): exact test bits/dim beside the independent
per-pixel baseline, FID beside the real-data floor, and sampling speed of the row-cached
sampler against the naive loop (same generator, same draws).

    flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn.py [--preset standard] [--set KEY=VALUE ...]

Runs two genbench cells through the real Runner (same batch order, budget, validation-selected
checkpoint, sampling, quantisation and metrics as ``genbench run``): ``independent`` (standard) and
``pixelcnn`` (``--preset``).  Then, on pixelcnn's validation-selected checkpoint:

* fast vs naive sampler: ``--speed-n`` images with the same generator, timed in turn; the samples
  must be identical; images/s of each, and one-image latency of each;
* completion: the top half of ``--complete-n`` test digits given, the bottom half sampled
  (``PixelCNN.complete``); the share of completions that the data set's classifier assigns to the
  original digit's class (the classifier's accuracy on the real test digits is the ceiling), and
  a PNG grid (original / given half / completion) in bench/results/.

Targets (issue 6): test bits/dim <= 1.8 (uniform is log2(17) = 4.09); FID <= 3 x floor.
Writes bench/results/pixelcnn_<preset>[_<tag>].json and .md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

import genbench_independent
import genbench_pixelcnn
from genbench.config import parse_overrides, resolve_config
from genbench.io import load_checkpoint
from genbench.metrics.extractors import get_extractor
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench_pixelcnn import PixelCNN

from bench_common import RESULTS, details  # noqa: E402
TARGET_BPD = 1.8
TARGET_FID_RATIO = 3.0


def registry():
    return build_registry(extra=[genbench_pixelcnn, genbench_independent], autoload=False)


def pick(rows: list[dict], metric: str) -> dict | None:
    hits = [r for r in rows if r["metric"] == metric]
    return hits[0] if hits else None


def timed_sample(model: PixelCNN, n: int, seed: int) -> tuple[torch.Tensor, float]:
    model.train(False)
    t0 = time.perf_counter()
    with torch.inference_mode():
        x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return x.cpu(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="pixelcnn config override")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="runner output folder (default: a fresh temporary folder)")
    ap.add_argument("--speed-n", type=int, default=100, help="images for the fast-vs-naive timing")
    ap.add_argument("--complete-n", type=int, default=300, help="test digits to complete from their top half")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()

    out = Path(args.out or tempfile.mkdtemp(prefix="pixelcnn-bench-"))
    runner = Runner(out_dir=out, registry=registry(), device=args.device, progress=False)
    overrides = parse_overrides(args.set)
    t0 = time.perf_counter()
    base = runner.run_cell(CellSpec("independent", "digits", args.seed, "standard"))
    res = runner.run_cell(CellSpec("pixelcnn", "digits", args.seed, args.preset, overrides))
    cells_wall = time.perf_counter() - t0
    for r in (base, res):
        if r.state == "failed":
            raise SystemExit(f"cell {r.spec.model} failed: {r.error}")
    rows, base_rows = res.rows, base.rows
    data = runner.load_data("digits")
    spec = data.spec

    # the validation-selected checkpoint, in a fast-sampler and a naive-sampler model
    config = resolve_config(PixelCNN, args.preset, spec, overrides)
    ckpt = res.run_dir / "checkpoints" / "best.pt"
    state = load_checkpoint(ckpt, runner.device)["model"]
    fast = PixelCNN(dataclasses.replace(config, sampler="fast"), spec, runner.device)
    naive = PixelCNN(dataclasses.replace(config, sampler="naive"), spec, runner.device)
    fast.load_state_dict(state)
    naive.load_state_dict(state)

    speed = {"n": args.speed_n, "device": str(runner.device), "sample_threads": config.sample_threads}
    timed_sample(fast, 2, 0)  # warm-up
    xf, tf = timed_sample(fast, args.speed_n, 1234)
    xn, tn = timed_sample(naive, args.speed_n, 1234)
    _, lf = timed_sample(fast, 1, 99)
    _, ln = timed_sample(naive, 1, 99)
    speed.update({
        "fast_images_per_second": args.speed_n / tf, "naive_images_per_second": args.speed_n / tn,
        "speedup": tn / tf, "identical_samples": bool(torch.equal(xf, xn)),
        "fast_latency_one_image_s": lf, "naive_latency_one_image_s": ln, "nfe": fast.last_nfe,
    })
    print(f"speed: fast {speed['fast_images_per_second']:.1f} img/s, naive {speed['naive_images_per_second']:.1f} img/s, "
          f"x{speed['speedup']:.1f}, identical {speed['identical_samples']}", flush=True)

    # completion of the bottom half from the top half
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device)
    x = data.unit("test")[: args.complete_n].to(runner.device)
    labels = data.test_labels[: args.complete_n]
    mask = torch.zeros(1, 1, spec.height, spec.width, dtype=torch.bool)
    mask[..., : spec.height // 2, :] = True
    completed = fast.complete(x, mask.to(runner.device), generator=torch.Generator().manual_seed(7)).cpu()
    kept = bool(torch.equal(completed[..., : spec.height // 2, :], x.cpu()[..., : spec.height // 2, :]))
    real_acc = float((ext.probabilities(x.cpu()).argmax(-1) == labels).double().mean())
    comp_acc = float((ext.probabilities(completed).argmax(-1) == labels).double().mean())
    grid_path = RESULTS / f"pixelcnn_{args.preset}{'_' + args.tag if args.tag else ''}_completion.png"
    save_completion_grid(x.cpu()[:20], mask, completed[:20], grid_path)

    def value(rs: list[dict], metric: str) -> float | None:
        r = pick(rs, metric)
        return None if r is None else float(r["value"])

    bpd, base_bpd = pick(rows, "bits_per_dim"), pick(base_rows, "bits_per_dim")
    fid, floor = pick(rows, "fid"), pick(rows, "fid_floor")
    result = {
        "command": "flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn.py " + " ".join(sys.argv[1:]),
        "preset": args.preset, "overrides": overrides, "seed": args.seed, "run_dir": str(res.run_dir),
        "config": config.to_dict(), "cells_wall_seconds": cells_wall,
        "train_seconds": value(rows, "train_seconds"), "train_steps": value(rows, "train_steps"),
        "parameters": value(rows, "parameters"),
        "selected_step": details(pick(rows, "val_bits_per_dim")).get("selected_step"),
        "val_bits_per_dim": value(rows, "val_bits_per_dim"),
        "test_bits_per_dim": {"value": bpd["value"], "stderr": bpd["stderr"], "kind": bpd["kind"], "n": bpd["n"]},
        "independent_test_bits_per_dim": {"value": base_bpd["value"], "stderr": base_bpd["stderr"]},
        "uniform_bits_per_dim": math.log2(spec.levels),
        "fid": {"value": fid["value"], "n": fid["n"], "sampler": fid["sampler"]},
        "fid_independent": value(base_rows, "fid"),
        "fid_floor": {"value": floor["value"], "n": floor["n"]},
        "fid_over_floor": fid["value"] / floor["value"],
        "extractor": {"name": fid["extractor"], "sha256": fid["extractor_sha256"],
                      "test_accuracy": details(fid).get("extractor_test_accuracy")},
        "runner_sampling": {"images_per_second": value(rows, "images_per_second"),
                            "batch_size": details(pick(rows, "images_per_second")).get("batch_size"),
                            "nfe": value(rows, "nfe"), "latency_s": value(rows, "latency"),
                            "flops_per_image": value(rows, "flops_per_image")},
        "fast_vs_naive": speed,
        "completion": {"n": len(x), "given": f"top {spec.height // 2} rows", "known_pixels_kept": kept,
                       "classifier_agrees_with_label": comp_acc, "classifier_accuracy_on_real": real_acc,
                       "grid": grid_path.name},
        "targets": {"test_bits_per_dim": f"<= {TARGET_BPD}", "fid_over_floor": f"<= {TARGET_FID_RATIO}"},
        "targets_met": {"test_bits_per_dim": bpd["value"] <= TARGET_BPD,
                        "fid_over_floor": fid["value"] / floor["value"] <= TARGET_FID_RATIO},
        "torch_threads": torch.get_num_threads(),
    }
    tag = f"pixelcnn_{args.preset}" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (RESULTS / f"{tag}.md").write_text(markdown(result))
    print(markdown(result))


def save_completion_grid(x: torch.Tensor, mask: torch.Tensor, completed: torch.Tensor, path: Path) -> None:
    """Rows: originals, the given top half (unknown shown grey), completions."""
    import torchvision.utils as vutils

    given = torch.where(mask.expand_as(x), x, torch.full_like(x, 0.5))
    grid = vutils.make_grid(torch.cat([x, given, completed]), nrow=len(x), padding=1, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    vutils.save_image(grid, str(path))


def markdown(r: dict) -> str:
    b, s, c = r["test_bits_per_dim"], r["fast_vs_naive"], r["completion"]
    ok = lambda v: "met" if v else "NOT met"  # noqa: E731
    return "\n".join([
        f"# Gated PixelCNN on digits ({r['preset']} preset, seed {r['seed']})",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Training: {r['train_steps']:.0f} steps in {r['train_seconds']:.0f} s, {r['parameters']:.0f} parameters; "
        f"validation-selected step {r['selected_step']} (val {r['val_bits_per_dim']:.4f} bits/dim).",
        "",
        "| model | test bits/dim (exact) | FID | FID / floor |",
        "|---|---|---|---|",
        f"| pixelcnn | {b['value']:.4f} ± {b['stderr']:.4f} | {r['fid']['value']:.3f} | {r['fid_over_floor']:.2f} |",
        f"| independent (baseline) | {r['independent_test_bits_per_dim']['value']:.4f} ± "
        f"{r['independent_test_bits_per_dim']['stderr']:.4f} | {r['fid_independent']:.3f} | "
        f"{r['fid_independent'] / r['fid_floor']['value']:.2f} |",
        f"| uniform | {r['uniform_bits_per_dim']:.4f} | | |",
        f"| real data (floor, n={r['fid_floor']['n']}) | | {r['fid_floor']['value']:.3f} | 1.00 |",
        "",
        f"FID: {r['fid']['n']} samples vs the test split, extractor {r['extractor']['name']} "
        f"(sha256 {str(r['extractor']['sha256'])[:12]}, test accuracy {r['extractor']['test_accuracy']}).",
        "",
        f"Targets: test bits/dim <= 1.8: {ok(r['targets_met']['test_bits_per_dim'])}; "
        f"FID <= 3 x floor: {ok(r['targets_met']['fid_over_floor'])}.",
        "",
        f"## Sampling speed ({s['device']}, {s['sample_threads']} torch thread(s) while sampling, NFE {s['nfe']})",
        "",
        "| sampler | images/s (batch %d) | one-image latency (s) |" % s["n"],
        "|---|---|---|",
        f"| row-cached (fast) | {s['fast_images_per_second']:.1f} | {s['fast_latency_one_image_s']:.3f} |",
        f"| naive (full pass per sub-pixel) | {s['naive_images_per_second']:.1f} | {s['naive_latency_one_image_s']:.3f} |",
        "",
        f"Speed-up x{s['speedup']:.1f}; identical samples from the same generator: {s['identical_samples']}. "
        f"The runner's own measurement (fast, batch {r['runner_sampling']['batch_size']}): "
        f"{r['runner_sampling']['images_per_second']:.1f} images/s.",
        "",
        "## Completion (bottom half from the top half)",
        "",
        f"{c['n']} test digits, {c['given']} given: known pixels kept: {c['known_pixels_kept']}; the classifier "
        f"assigns {100 * c['classifier_agrees_with_label']:.1f}% of completions to the original digit's class "
        f"(its accuracy on the real digits: {100 * c['classifier_accuracy_on_real']:.1f}%). Grid: `{c['grid']}` "
        "(rows: original, given half, completion).",
        "",
    ])


if __name__ == "__main__":
    main()
