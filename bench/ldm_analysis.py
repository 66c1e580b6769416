"""What the latent diffusion model's numbers are made of: the bound's three terms, the FLOPs of the latent
loop and of the decoder pass, the autoencoder's reconstruction FID, and the budget split between stages.

    genbench run --config bench/grids/ldm_digits.toml        # the cells (LDM and pixel DDPM, equal time)
    flock /tmp/genbench-cpu.lock .venv/bin/python bench/ldm_analysis.py bench/grids/ldm_digits.toml \\
        [--decomp-n 2000]

Reads the ``ldm`` cell of the grid for ``--seed`` from the grid's out folder (a cell not finished there is
run first, through the Runner) and analyses its validation-selected checkpoint:

* the bound on the first ``--decomp-n`` test images split into reconstruction E_q[-log p(x|z)],
  E_q[log q(z|x)] and the latent cross-entropy E_q[VLB(s z)] - d log s (LSGM's decomposition);
* FLOPs per image of ``--steps`` DDIM steps in latent space and of the one decoder pass;
* reconstruction FID: held-out real images through encoder mean -> decoder mean, against the test split
  (the best FID this first stage allows);
* the autoencoder's share of the training steps and seconds;
* with ``--posterior-scales 1,2,4,...``: the same three terms with the bound's posterior q_c(z|x) =
  N(mean, (c sigma)^2) widened by each c (the model and its samples do not change; any q gives a valid bound,
  Cremer et al. 2018), beside the c the model fitted on training batches.

Writes bench/results/<grid name>_analysis.json and .md (stamped with the commit and the extractor recipe).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from genbench.grid import load_grid
from genbench.io import load_checkpoint
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.plugins import build_registry
from genbench.runner import Runner

from bench_common import write  # noqa: E402  (bench/ is on sys.path when run as a script)


def flops(fn) -> tuple[float, object]:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        out = fn()
    return float(counter.get_total_flops()), out


TERMS = ("reconstruction", "neg_entropy", "latent_cross_entropy", "log_det", "total")


@torch.no_grad()
def bound_terms_bpd(model, x_test: torch.Tensor, dims: int, posterior_scale: float | None = None) -> dict:
    """Mean of each bound term over ``x_test`` in bits/dim (LSGM's split, Vahdat et al. 2021 eq. 2), with the
    bound's posterior scale c (None: the model's own).  The bound seeds its noise from each batch's content, so
    every c sees the same draws (common random numbers)."""
    sums = dict.fromkeys(TERMS, 0.0)
    for i in range(0, len(x_test), 100):
        batch = x_test[i : i + 100]
        m = model.bound_terms(batch, strata=model.config.test_vlb_strata, posterior_scale=posterior_scale).means()
        for k in sums:
            sums[k] += m[k] * len(batch)
    return {k: v / len(x_test) / (dims * math.log(2)) for k, v in sums.items()}


@torch.no_grad()
def analyse(model, data, ext, n: int, decomp_n: int, steps: int, posterior_scales: tuple[float, ...] = ()) -> dict:
    """The bound's terms on the test split, the FLOPs split, the reconstruction FID, the stage split."""
    model.train(False)
    spec = data.spec
    x_test = data.unit("test")[:decomp_n]
    terms_bpd = bound_terms_bpd(model, x_test, spec.dims)
    sweep = [{"posterior_scale": c, **bound_terms_bpd(model, x_test, spec.dims, c)} for c in posterior_scales]
    gen = torch.Generator().manual_seed(0)
    latent_flops, u = flops(lambda: model.sample_latents(1, steps, gen)[0])
    decoder_flops, _ = flops(lambda: model.decode(u, gen))
    pool = data.reference_pool()
    idx = torch.randperm(len(pool), generator=torch.Generator().manual_seed(7))[:n]
    recon = []
    for i in range(0, len(idx), 500):
        mean, _ = model.encode(spec.to_unit(pool[idx[i : i + 500]]))
        recon.append(spec.quantise(model.lik.mean(model.networks["decoder"](mean)).cpu()))
    recon_fid = fid_between(ext, data.unit("test"), spec.to_unit(torch.cat(recon)))
    return {
        "bound_terms_bits_per_dim": terms_bpd, "bound_terms_n": len(x_test),
        "latent_flops_per_image": latent_flops, "decoder_flops_per_image": decoder_flops, "sampler_steps": steps,
        "latent_shape": list(model.latent_shape), "scale_factor": model.scale, "f": model.ae_cfg.f,
        "decoder_likelihood": model.lik.name, "reconstruction_fid": recon_fid, "reconstruction_n": len(idx),
        "ae_steps": model.ae_steps, "ae_seconds": model.ae_seconds,
        "posterior_scale": model.posterior_scale, "kl_weight": model.config.kl_weight, "decode": model.config.decode,
        "posterior_scale_sweep": sweep,
    }


def markdown(r: dict) -> str:
    a, t = r["analysis"], r["analysis"]["bound_terms_bits_per_dim"]
    floor = r.get("fid_floor")
    ratio = f" = {a['reconstruction_fid'] / floor:.2f} x the floor ({floor:.4g})" if floor else ""
    return "\n".join([
        f"# Latent diffusion on {r['dataset']}: what its numbers are made of (seed {r['seed']})", "",
        f"Command: `{r['command']}`; cell {r['run_id']} ({r['train_steps']:.0f} steps, {r['train_seconds']:.0f} s).", "",
        f"- Autoencoder: f = {a['f']}, latents {a['latent_shape']} (C, h, w), decoder {a['decoder_likelihood']}, "
        f"scale factor s = {a['scale_factor']:.4f} (1 / std of the first stage-2 batch's latents).",
        f"- Budget split: stage 1 (autoencoder) {a['ae_steps']} steps / {a['ae_seconds']:.0f} s of the "
        f"{r['train_steps']:.0f} steps / {r['train_seconds']:.0f} s; stage 2 (latent DDPM) the rest "
        f"(ae_fraction = {r['config']['ae_fraction']}).",
        f"- FLOPs per image with DDIM-{a['sampler_steps']}: latent loop {a['latent_flops_per_image']:.3g}, decoder pass "
        f"{a['decoder_flops_per_image']:.3g} (NFE = {a['sampler_steps']} + 1).",
        f"- Reconstruction FID of the autoencoder (encoder mean -> decoder mean, {a['reconstruction_n']} held-out real "
        f"images vs the test split, {r['extractor']}): **{a['reconstruction_fid']:.4g}**{ratio}: what stage 1 alone "
        "costs in FID.",
        f"- Autoencoder objective: KL weight {a.get('kl_weight')}; samples: decoder "
        f"{'draws' if a.get('decode') == 'sample' else 'means'}; the "
        f"bound's posterior std scale c = {a.get('posterior_scale', 1.0):.3f} (fitted on training batches).",
        f"- Bound on the first {a['bound_terms_n']} test images, bits/dim: reconstruction E_q[-log p(x|z)] "
        f"{t['reconstruction']:.4f} + E_q[log q(z|x)] {t['neg_entropy']:.4f} + latent cross-entropy "
        f"E_q[VLB(s z)] - d log s {t['latent_cross_entropy']:.4f} (of which -d log s: {t['log_det']:.4f}) = "
        f"**{t['total']:.4f}**.", ""] + sweep_markdown(a))


def sweep_markdown(a: dict) -> list[str]:
    """The bound's terms per posterior scale c, as a table (empty without a sweep)."""
    rows = a.get("posterior_scale_sweep") or []
    if not rows:
        return []
    lines = [f"Bound terms (bits/dim) with the posterior widened by c (the model fitted c = "
             f"{a.get('posterior_scale', 1.0):.3f}); same z noise for every c:", "",
             "| c | reconstruction | E_q[log q] | latent cross-entropy | total |", "|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['posterior_scale']:g} | {r['reconstruction']:.4f} | {r['neg_entropy']:.4f} | "
                     f"{r['latent_cross_entropy']:.4f} | {r['total']:.4f} |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid", help="a grid file with an ldm cell (bench/grids/ldm_*.toml)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--decomp-n", type=int, default=2000, help="test images for the bound's decomposition")
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps of the FLOPs count")
    ap.add_argument("--posterior-scales", default="",
                    help="comma-separated c values: the bound's terms with q widened by each (e.g. 0.5,1,2,4,8)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="the grid's runner folder (default: the grid's out)")
    args = ap.parse_args()
    registry = build_registry(autoload=True)
    grid = load_grid(args.grid)
    cells = [c for c in grid.cell_specs(registry) if c.model == "ldm" and c.seed == args.seed]
    if len(cells) != 1:
        raise SystemExit(f"{args.grid}: expected one ldm cell with seed {args.seed}, found {len(cells)}")
    runner = Runner(Path(args.out or grid.out or "reports"), registry=registry, device=args.device, progress=False,
                    extractors=grid.extractors)
    plan = runner.plan(cells[0])
    res = runner.run_cell(plan)
    if res.state == "failed":
        raise SystemExit(f"ldm cell failed: {res.error}")
    ckpt = res.run_dir / "checkpoints" / "best.pt"
    model = plan.model_cls(plan.config, plan.data.spec, runner.device)
    model.load_state_dict(load_checkpoint(ckpt if ckpt.exists() else res.run_dir / "checkpoints" / "last.pt",
                                          runner.device)["model"])
    ext = get_extractor(runner.extractors[0], plan.data, runner.cache_dir, runner.device, registry)
    try:
        scales = tuple(float(v) for v in args.posterior_scales.split(",") if v.strip())
    except ValueError:
        raise SystemExit(f"--posterior-scales: expected comma-separated positive numbers, got {args.posterior_scales!r}")
    if any(not (math.isfinite(c) and c > 0) for c in scales):
        raise SystemExit(f"--posterior-scales: every c must be a positive number, got {args.posterior_scales!r}")
    analysis = analyse(model, plan.data, ext, plan.config.n_samples, args.decomp_n, args.steps, scales)
    value = {r["metric"]: r["value"] for r in res.rows if r.get("extractor") in ("", None, ext.name)}
    result = {
        "command": "flock /tmp/genbench-cpu.lock .venv/bin/python bench/ldm_analysis.py " + " ".join(sys.argv[1:]),
        "grid": args.grid, "dataset": cells[0].dataset, "seed": args.seed, "run_id": plan.run_id,
        "config": plan.config.to_dict(), "train_steps": value.get("train_steps"), "train_seconds": value.get("train_seconds"),
        "fid_floor": value.get("fid_floor"), "extractor": ext.name, "analysis": analysis,
    }
    write(result, f"{Path(args.grid).stem}_analysis", markdown(result), [ext])


if __name__ == "__main__":
    main()
