"""Latent diffusion vs pixel-space DDPM at equal training time (issue 7): FID vs the real-data floor, bits/dim,
images/s with DDIM-50, FLOPs (latent loop and decoder apart), the autoencoder's own reconstruction FID.

    flock /tmp/genbench-cpu.lock .venv/bin/python bench/ldm.py --dataset digits --minutes 4
    flock /tmp/genbench-cpu.lock .venv/bin/python bench/ldm.py --dataset fashion-mnist --minutes 3 \
        --sampling-seeds 2 --bpd-n 500 --decomp-n 500

Each model is one genbench cell through the real Runner (same batches, seed, validation-selected checkpoint,
sampling, quantisation and metrics as ``genbench run``), preset ``quick`` with the budget replaced by
``--minutes`` of training (``max_steps`` off, so the step count is whatever fits; validation time counts, as in
the runner) and sampler DDIM-50.  Then the selected checkpoint draws the same number of samples for further
sampling seeds (FID mean ± sd; the floor over as many random real subsets), and for latent diffusion:
the bound's three terms on the test split, the FLOPs of the 50 latent steps and of the decoder pass
separately, the autoencoder's reconstruction FID (encoder mean -> decoder mean of held-out real images: the
best FID this first stage allows), and the budget split between the stages.

``--extractor``: FID features.  The default ``classifier`` is the data set's own CNN (trained once and cached;
at most 1500 optimisation steps, so about a minute on Fashion-MNIST on 2 CPU cores); ``random-cnn`` is the same
CNN at a fixed random initialisation (weaker, no training).  ``--bpd-n`` scores the bound on the first n test
images here instead of the runner's whole test split (the pixel DDPM's VLB over 10000 28x28 images is long).
Writes bench/results/ldm_<dataset>[_<tag>].json and .md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import genbench_ddpm
import genbench_ldm
from genbench.config import parse_overrides, resolve_config
from genbench.io import load_checkpoint
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.metrics.likelihood import nll_over, summarise
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner

from bench_common import RESULTS, details, draw, stats  # noqa: E402
SAMPLER_STEPS = 50



def flops(fn) -> tuple[float, object]:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        out = fn()
    return float(counter.get_total_flops()), out


@torch.no_grad()
def ldm_analysis(model, data, ext, test, n: int, decomp_n: int) -> dict:
    """The bound's terms on the test split, FLOPs split, reconstruction FID, the stage split."""
    model.train(False)
    spec = data.spec
    scale = 1.0 / (spec.dims * math.log(2))
    sums = {"reconstruction": 0.0, "neg_entropy": 0.0, "latent_cross_entropy": 0.0, "log_det": 0.0, "total": 0.0}
    x_test = data.unit("test")[:decomp_n]
    for i in range(0, len(x_test), 100):
        m = model.bound_terms(x_test[i : i + 100], strata=model.config.test_vlb_strata).means()
        for k in sums:
            sums[k] += m[k] * len(x_test[i : i + 100])
    terms_bpd = {k: v / len(x_test) * scale for k, v in sums.items()}
    gen = torch.Generator().manual_seed(0)
    latent_flops, u = flops(lambda: model.sample_latents(1, SAMPLER_STEPS, gen)[0])
    decoder_flops, _ = flops(lambda: model.decode(u))
    pool = data.reference_pool()
    idx = torch.randperm(len(pool), generator=torch.Generator().manual_seed(7))[:n]
    recon = []
    for i in range(0, len(idx), 500):
        mean, _ = model.encode(spec.to_unit(pool[idx[i : i + 500]]))
        recon.append(spec.quantise(model.decode((model.scale or 1.0) * mean).cpu()))
    recon_fid = fid_between(ext, test, spec.to_unit(torch.cat(recon)))
    return {
        "bound_terms_bits_per_dim": terms_bpd, "bound_terms_n": len(x_test),
        "latent_flops_per_image": latent_flops, "decoder_flops_per_image": decoder_flops,
        "latent_shape": list(model.latent_shape), "scale_factor": model.scale, "f": model.ae_cfg.f,
        "decoder_likelihood": model.lik.name, "reconstruction_fid": recon_fid,
        "ae_steps": model.ae_steps, "ae_seconds": model.ae_seconds,
    }


def run_model(runner: Runner, name: str, args, overrides: dict, ext, test, pool, seeds: int) -> dict:
    cls = runner.registry.models.get(name)
    t0 = time.perf_counter()
    res = runner.run_cell(CellSpec(name, args.dataset, args.seed, args.preset, overrides))
    wall = time.perf_counter() - t0
    if res.state == "failed":
        raise SystemExit(f"{name} cell failed: {res.error}")
    rows = res.rows
    data = runner.load_data(args.dataset)
    config = resolve_config(cls, args.preset, data.spec, overrides)
    model = cls(config, data.spec, runner.device)
    ckpt = res.run_dir / "checkpoints" / "best.pt"
    model.load_state_dict(load_checkpoint(ckpt if ckpt.exists() else res.run_dir / "checkpoints" / "last.pt",
                                          runner.device)["model"])

    def row(metric: str, sampler: str = "", extractor: str = "") -> dict | None:
        hits = [r for r in rows if r["metric"] == metric and (not sampler or r.get("sampler") == sampler)
                and (not extractor or r.get("extractor") == extractor)]
        return hits[0] if hits else None

    label = model.sampler_name(SAMPLER_STEPS)
    fids = [row("fid", label, ext.name)["value"]]
    seconds = [config.n_samples / row("images_per_second", label)["value"]]
    for j in range(1, seeds):
        x, sec = draw(model, config.n_samples, config.sample_batch_size, SAMPLER_STEPS, 1_000_003 * j + 1, data.spec)
        fids.append(fid_between(ext, test, x))
        seconds.append(sec)
        print(f"{name} {label} seed {j}: FID {fids[-1]:.4g}, {sec:.1f}s", flush=True)
    bpd = row("bits_per_dim")
    if bpd is None and not args.bpd_n:  # the runner's test metric was not run: report the validation bound
        v = row("val_bits_per_dim")
        bpd = {"value": v["value"], "stderr": float("nan"), "kind": f"{v['kind']}, validation split ({v['n']} images)"}
    if args.bpd_n:  # the bound on the first bpd_n test images, here rather than in the runner (cost)
        x_sub = data.unit("test")[: args.bpd_n]
        (lab, (est, nats)), = nll_over(model, x_sub, 100, runner.device).items()
        mean, se = summarise(nats, data.spec.dims)
        bpd = {"value": mean, "stderr": se, "kind": f"{lab}, first {len(x_sub)} test images"}
    conf = row("confident_share", label)
    out = {
        "model": name, "run_dir": str(res.run_dir), "cell_wall_seconds": wall, "overrides": overrides,
        "config": config.to_dict(), "train_seconds": row("train_seconds")["value"],
        "train_steps": row("train_steps")["value"], "parameters": row("parameters")["value"],
        "selected_step": details(row("val_bits_per_dim")).get("selected_step"),
        "bits_per_dim": {"value": bpd["value"], "stderr": bpd["stderr"], "kind": bpd["kind"]},
        "sampler": label, "nfe": row("nfe", label)["value"], "fid": stats(fids),
        "images_per_second": statistics.fmean(config.n_samples / s for s in seconds),
        "batch_size": min(config.sample_batch_size, config.n_samples),
        "flops_per_image": (row("flops_per_image", label) or {}).get("value"),
        "latency_one_image_s": (row("latency", label) or {}).get("value"),
        "confident_share": conf["value"] if conf else None,
    }
    if name == "ldm" and not args.no_analysis:
        out["ldm"] = ldm_analysis(model, data, ext, test, config.n_samples, args.decomp_n)
    return out


def markdown(r: dict) -> str:
    f = r["fid_floor"]
    lines = [
        f"# Latent diffusion vs pixel DDPM on {r['dataset']}, equal training time ({r['minutes']:g} min each)", "",
        f"Command: `flock /tmp/genbench-cpu.lock .venv/bin/{r['command']}`", "",
        f"Preset `{r['preset']}` with max_steps off and max_minutes = {r['minutes']:g}; training seed {r['seed']}; "
        f"{r['torch_threads']} CPU threads on a shared machine (timings are noisy).  FID: `{r['extractor']['name']}` "
        f"features (sha256 {r['extractor']['sha256'][:12]}, classifier test accuracy {r['extractor']['test_accuracy']}), "
        f"{r['n_samples']} samples vs the test split, mean ± sd over {r['sampling_seeds']} sampling seeds.  "
        f"Real-data floor ({r['fid_floor_n']} held-out real images vs test, {r['sampling_seeds']} subsets): "
        f"**{f['mean']:.4g} ± {f['sd']:.2g}**.", "",
        "| model | params | steps | train s | bits/dim (kind) | sampler | NFE | FID | FID / floor | images/s (batch) | "
        "FLOP/image | 1-image latency s | confident share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in r["models"]:
        b = m["bits_per_dim"]
        conf = f"{m['confident_share']:.3f}" if m.get("confident_share") is not None else "—"
        fl = f"{m['flops_per_image']:.3g}" if m.get("flops_per_image") else "—"
        lines.append(
            f"| {m['model']} | {m['parameters'] / 1e6:.2f}M | {m['train_steps']:.0f} | {m['train_seconds']:.0f} | "
            f"{b['value']:.4f} ± {b['stderr']:.4f} ({b['kind']}) | {m['sampler']} | {m['nfe']:.0f} | "
            f"{m['fid']['mean']:.4g} ± {m['fid']['sd']:.2g} | {m['fid']['mean'] / f['mean']:.2f} | "
            f"{m['images_per_second']:.1f} ({m['batch_size']}) | {fl} | {m['latency_one_image_s']:.3f} | {conf} |")
    for m in r["models"]:
        if "ldm" not in m:
            continue
        a, t = m["ldm"], m["ldm"]["bound_terms_bits_per_dim"]
        lines += [
            "", "## Latent diffusion details", "",
            f"- Autoencoder: f = {a['f']}, latents {a['latent_shape']} (C, h, w), decoder {a['decoder_likelihood']}, "
            f"scale factor s = {a['scale_factor']:.4f} (1 / std of the first stage-2 batch's latents).",
            f"- Budget split: stage 1 (autoencoder) {a['ae_steps']} steps / {a['ae_seconds']:.0f} s of the "
            f"{m['train_steps']:.0f} steps / {m['train_seconds']:.0f} s; stage 2 (latent DDPM) the rest "
            f"(ae_fraction = {m['config']['ae_fraction']}).",
            f"- FLOPs per image with DDIM-{SAMPLER_STEPS}: latent loop {a['latent_flops_per_image']:.3g}, decoder pass "
            f"{a['decoder_flops_per_image']:.3g} (NFE = {SAMPLER_STEPS} + 1).",
            f"- Reconstruction FID of the autoencoder (encoder mean -> decoder mean, {r['n_samples']} held-out real "
            f"images): **{a['reconstruction_fid']:.4g}** = {a['reconstruction_fid'] / f['mean']:.2f} x floor: what "
            "stage 1 alone costs in FID.",
            f"- Bound on the first {a['bound_terms_n']} test images, bits/dim: reconstruction E_q[-log p(x|z)] "
            f"{t['reconstruction']:.4f} + E_q[log q(z|x)] {t['neg_entropy']:.4f} + latent cross-entropy "
            f"E_q[VLB(s z)] - d log s {t['latent_cross_entropy']:.4f} (of which -d log s: {t['log_det']:.4f}) = "
            f"**{t['total']:.4f}**.",
        ]
    lines += ["", "## Where latent diffusion wins and loses here", "", r.get("note", "(see the report)"), ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--preset", default="quick")
    p.add_argument("--models", default="ldm,ddpm")
    p.add_argument("--set-ldm", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--set-ddpm", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--sampling-seeds", type=int, default=3)
    p.add_argument("--decomp-n", type=int, default=2000, help="test images for the bound's decomposition")
    p.add_argument("--extractor", default="classifier")
    p.add_argument("--metrics", default="", help="comma-separated metric names to keep (default: all)")
    p.add_argument("--bpd-n", type=int, default=0,
                   help="bits/dim on the first N test images, computed by this script (the runner's bits_per_dim "
                        "metric is then dropped); 0: the runner's, on the whole test split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="/tmp/ldm-bench")
    p.add_argument("--cache", default=None, help="extractor cache folder (default: <out>/cache)")
    p.add_argument("--tag", default="")
    p.add_argument("--note", default="", help="text for the 'wins and loses' section")
    p.add_argument("--no-analysis", action="store_true", help="skip the latent-diffusion analysis (terms, FLOPs split, "
                   "reconstruction FID)")
    p.add_argument("--render", default=None, metavar="JSON", help="only re-render JSON's .md (with --note)")
    args = p.parse_args()
    if args.render:
        path = Path(args.render)
        result = json.loads(path.read_text())
        result["note"] = args.note or result.get("note", "")
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        path.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return
    os.environ["GENBENCH_EXTRACTORS"] = args.extractor
    registry = build_registry(extra=[genbench_ddpm, genbench_ldm], autoload=False)
    keep = set(args.metrics.split(",")) if args.metrics else set(registry.metrics.entries)
    if args.bpd_n:
        keep.discard("bits_per_dim")
    for name in list(registry.metrics.entries):
        if name not in keep:
            del registry.metrics.entries[name]
    runner = Runner(out_dir=Path(args.out), registry=registry, device=args.device, progress=False,
                    cache_dir=args.cache)
    data = runner.load_data(args.dataset)
    ext = get_extractor(args.extractor, data, runner.cache_dir, runner.device)
    test, pool = data.unit("test"), data.reference_pool()
    budget = {"max_minutes": args.minutes, "max_steps": None, "sample_steps": [SAMPLER_STEPS], "n_samples": args.n_samples}
    sets = {"ldm": parse_overrides(args.set_ldm), "ddpm": parse_overrides(args.set_ddpm)}
    models = [run_model(runner, name, args, {**budget, **sets.get(name, {})}, ext, test, pool, args.sampling_seeds)
              for name in args.models.split(",")]
    n_floor = min(args.n_samples, len(pool))
    floors = []
    for j in range(args.sampling_seeds):
        perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + j))[:n_floor]
        floors.append(fid_between(ext, test, data.spec.to_unit(pool[perm])))
    result = {
        "command": "python bench/ldm.py " + " ".join(sys.argv[1:]), "dataset": args.dataset, "minutes": args.minutes,
        "preset": args.preset, "seed": args.seed, "n_samples": args.n_samples, "sampling_seeds": args.sampling_seeds,
        "fid_floor": stats(floors), "fid_floor_n": n_floor, "models": models,
        "extractor": {"name": ext.name, "sha256": ext.sha256, "test_accuracy": ext.accuracy},
        "torch_threads": torch.get_num_threads(), "note": args.note,
    }
    tag = f"ldm_{args.dataset}" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = markdown(result)
    (RESULTS / f"{tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
