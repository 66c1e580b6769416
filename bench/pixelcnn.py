"""Gated PixelCNN on digits: exact test bits/dim beside the independent per-pixel baseline, FID beside the
real-data floor, and the sampling speed of the row-cached sampler against the naive loop (same generator,
same draws), plus completions of half-seen digits.

    flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn.py --grid bench/grids/pixelcnn_vs_independent.toml \
        [--seed 1 --tag seed1]
    flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn.py [--preset standard] [--set KEY=VALUE ...] \
        [--out FOLDER]

The two cells (``pixelcnn`` and ``independent`` for ``--seed``) run through the real Runner: from the
grid file (its out folder by default; cells that ``genbench run --config`` already finished there are read,
not trained again), or ``pixelcnn`` with ``--preset``/``--set`` and ``independent`` (standard) into
``--out``.  Then, on pixelcnn's validation-selected checkpoint:

* fast vs naive sampler: ``--speed-n`` images with the same generator, each drawn and timed by the runner's
  sampler (``genbench.runner.sampling.draw``); the samples must be identical; images/s and one-image latency;
* completion: the top half of ``--complete-n`` test digits given, the bottom half sampled
  (``PixelCNN.complete``); the share of completions that the data set's classifier assigns to the
  original digit's class (the classifier's accuracy on the real test digits is the ceiling), and
  a PNG grid (original / given half / completion) in bench/results/.

Targets: test bits/dim <= 1.8 (uniform is log2(17) = 4.09); FID <= 3 x floor.
Writes bench/results/pixelcnn_<preset>[_<tag>].json and .md (stamped with the commit and the extractor recipe).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from genbench.config import parse_overrides
from genbench.grid import load_grid
from genbench.io import load_checkpoint
from genbench.metrics.extractors import get_extractor
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.runner.sampling import draw

from bench_common import RESULTS, details, pick, write  # noqa: E402  (bench/ is on sys.path when run as a script)

TARGET_BPD = 1.8
TARGET_FID_RATIO = 3.0


def timed(model, data, config, n: int, seed: int, device: torch.device) -> tuple[torch.Tensor, float]:
    """``n`` samples in one batch from the runner's sampler (levels) and the seconds they took."""
    one_batch = dataclasses.replace(config, n_samples=n, sample_batch_size=n)
    levels, seconds, _ = draw(model, data, one_batch, None, torch.Generator().manual_seed(seed), device,
                              model.sampler_name(None))
    return levels, seconds


def cells(args, registry) -> tuple[Path, list[CellSpec]]:
    """The output folder and the (independent, pixelcnn) cells for ``args.seed``."""
    if args.grid:
        grid = load_grid(args.grid)
        chosen = [c for c in grid.cell_specs(registry) if c.seed == args.seed]
        found = {c.model: c for c in chosen}
        if set(found) != {"pixelcnn", "independent"}:
            raise SystemExit(f"{args.grid} has no pixelcnn and independent cells with seed {args.seed}")
        return Path(args.out or grid.out or "reports"), [found["independent"], found["pixelcnn"]]
    out = Path(args.out or tempfile.mkdtemp(prefix="pixelcnn-bench-"))
    return out, [CellSpec("independent", "digits", args.seed, "standard"),
                 CellSpec("pixelcnn", "digits", args.seed, args.preset, parse_overrides(args.set))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=None, help="a grid file with pixelcnn and independent cells")
    ap.add_argument("--preset", default="standard", help="pixelcnn preset (without --grid)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="pixelcnn config override "
                    "(without --grid)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="runner output folder (default: the grid's, else a temporary one)")
    ap.add_argument("--speed-n", type=int, default=100, help="images for the fast-vs-naive timing")
    ap.add_argument("--complete-n", type=int, default=300, help="test digits to complete from their top half")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    if args.grid and args.set:
        raise SystemExit("--set applies without --grid only (put overrides in the grid file)")

    registry = build_registry(autoload=True)
    out, (base_spec, spec_cell) = cells(args, registry)
    runner = Runner(out_dir=out, registry=registry, device=args.device, progress=False)
    t0 = time.perf_counter()
    base = runner.run_cell(base_spec)
    plan = runner.plan(spec_cell)
    res = runner.run_cell(plan)
    cells_wall = time.perf_counter() - t0
    for r in (base, res):
        if r.state == "failed":
            raise SystemExit(f"cell {r.spec.model} failed: {r.error}")
    rows, base_rows = res.rows, base.rows
    data = plan.data
    spec = data.spec
    preset = spec_cell.preset

    # the validation-selected checkpoint, in a fast-sampler and a naive-sampler model
    config = plan.config
    state = load_checkpoint(res.run_dir / "checkpoints" / "best.pt", runner.device)["model"]
    fast = plan.model_cls(dataclasses.replace(config, sampler="fast"), spec, runner.device)
    naive = plan.model_cls(dataclasses.replace(config, sampler="naive"), spec, runner.device)
    fast.load_state_dict(state)
    naive.load_state_dict(state)
    fast.train(False)
    naive.train(False)

    speed = {"n": args.speed_n, "device": str(runner.device), "sample_threads": config.sample_threads}
    timed(fast, data, config, 2, 0, runner.device)  # warm-up
    xf, tf = timed(fast, data, config, args.speed_n, 1234, runner.device)
    xn, tn = timed(naive, data, config, args.speed_n, 1234, runner.device)
    _, lf = timed(fast, data, config, 1, 99, runner.device)
    _, ln = timed(naive, data, config, 1, 99, runner.device)
    speed.update({
        "fast_images_per_second": args.speed_n / tf, "naive_images_per_second": args.speed_n / tn,
        "speedup": tn / tf, "identical_samples": bool(torch.equal(xf, xn)),
        "fast_latency_one_image_s": lf, "naive_latency_one_image_s": ln, "nfe": fast.nfe(None),
    })
    print(f"speed: fast {speed['fast_images_per_second']:.1f} img/s, naive {speed['naive_images_per_second']:.1f} img/s, "
          f"x{speed['speedup']:.1f}, identical {speed['identical_samples']}", flush=True)

    # completion of the bottom half from the top half
    ext = get_extractor("classifier", data, runner.cache_dir, runner.device, registry)
    x = data.unit("test")[: args.complete_n].to(runner.device)
    labels = data.test_labels[: args.complete_n]
    mask = torch.zeros(1, 1, spec.height, spec.width, dtype=torch.bool)
    mask[..., : spec.height // 2, :] = True
    completed = fast.complete(x, mask.to(runner.device), generator=torch.Generator().manual_seed(7)).cpu()
    kept = bool(torch.equal(completed[..., : spec.height // 2, :], x.cpu()[..., : spec.height // 2, :]))
    real_acc = float((ext.probabilities(x.cpu()).argmax(-1) == labels).double().mean())
    comp_acc = float((ext.probabilities(completed).argmax(-1) == labels).double().mean())
    tag = f"pixelcnn_{preset}" + (f"_{args.tag}" if args.tag else "")
    grid_path = RESULTS / f"{tag}_completion.png"
    save_completion_grid(x.cpu()[:20], mask, completed[:20], grid_path)

    def value(rs: list[dict], metric: str) -> float | None:
        r = pick(rs, metric)
        return None if r is None else float(r["value"])

    bpd, base_bpd = pick(rows, "bits_per_dim"), pick(base_rows, "bits_per_dim")
    fid, floor = pick(rows, "fid", sampling_seed=0), pick(rows, "fid_floor")
    result = {
        "command": "flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn.py " + " ".join(sys.argv[1:]),
        "grid": args.grid, "preset": preset, "overrides": spec_cell.overrides, "seed": args.seed,
        "run_dir": str(res.run_dir), "config": config.to_dict(), "cells_wall_seconds": cells_wall,
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
    write(result, tag, markdown(result), [ext])


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
