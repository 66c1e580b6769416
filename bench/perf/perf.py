"""Performance benchmark: genbench side by side with the tools a user would pick instead, in one process.

Everything is measured in the same process, interleaved where two things are compared, so the ratios survive
the noise of a shared machine:

1. ``peak``: this machine's measured matmul throughput (square matmuls, fp32 and bf16): the denominators.
2. ``sampling``: images/s of genbench's DDIM and ancestral (DDPM) samplers against diffusers' ``UNet2DModel``
   with ``DDIMScheduler`` / ``DDPMScheduler`` at equal NFE and batch, the U-Net of matched parameter count (the
   genbench_diffusers plugin's quick preset: widths 32/64, one block per level, attention at the lower level and
   in the middle; within 5% of the ddpm quick U-Net), per precision.  The diffusers loop is the one
   ``DDIMPipeline``/``DDPMPipeline`` runs, without the progress bar.
3. ``harness``: genbench's ``Trainer`` for N steps against a bare PyTorch loop over the same model, batches and
   precision (batch indexing, then the model's ``train_step``: Algorithm 1, clipping, Adam, EMA), interleaved.
4. ``fid``: images -> FID on 10,000 images per set with the data-set classifier CNN (genbench vs torchmetrics;
   torch-fidelity takes no custom network) and with Inception (torch-fidelity's network and offline weights,
   genbench vs torchmetrics vs torch-fidelity) on fewer images (CPU: 10,000 would take hours), Inception
   images/s stated.  Reuses ``bench/metrics.py``.
5. ``flops``: FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``) of every family's training step and
   sampler at its quick preset on digits (and DDPM's training step at 28x28), achieved GFLOP/s and the ratio to
   the measured peak of the precision it ran in.
6. ``pixelcnn``: the row-cached sampler against the naive loop (same generator, same draws).
7. ``compile``: ``torch.compile`` of the DDPM training step and sampler network call: compile seconds, step
   time eager vs compiled, and the break-even number of steps against the quick preset's budget.

Run:  flock /tmp/genbench-cpu.lock .venv/bin/python bench/perf/perf.py [--device cpu|cuda] [--quick]
(``make perf``).  Writes bench/results/perf.json and perf.md, stamped with the commit (``bench_common.write``).
``--quick``: a smoke run (< 3 minutes on 2 cores); ``--smoke``: seconds (the test suite's).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))  # bench_common, metrics

from bench_common import RESULTS, write  # noqa: E402

from genbench import DataSpec  # noqa: E402
from genbench.config import resolve_config  # noqa: E402
from genbench.runner.precision import DTYPES, autocast, cpu_has_bf16, resolve_threads  # noqa: E402

DIGITS = DataSpec(1, 8, 8, 17)

# sizes per mode: full (the committed results), quick (< 3 min), smoke (seconds, tests)
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(peak_sizes=(512, 1024, 2048, 4096), peak_reps=20, batch=100, ddim_steps=50, ddpm_T=100, reps=2, harness_steps=30,
                 harness_reps=7, n_cnn=10_000, n_inception=32, inception_batch=32, flops_steps=3, flops_sample_n=20,
                 pixelcnn_n=20, ddpm28=True, compile=True, compile_steps=5, layouts=True),
    "quick": dict(peak_sizes=(512,), peak_reps=10, batch=50, ddim_steps=10, ddpm_T=20, reps=2, harness_steps=8,
                  harness_reps=1, n_cnn=2000, n_inception=0, inception_batch=16, flops_steps=1, flops_sample_n=4,
                  pixelcnn_n=4, ddpm28=False, compile=False, compile_steps=3),
    # a CUDA device (bench/gpu_check.sh perf): GPU-sized batches, Inception FID on 10,000 images per set, and the
    # paper preset's DDPM on CIFAR-shaped data (3x32x32, 256 levels)
    "cuda": dict(peak_sizes=(4096, 8192), peak_reps=10, batch=1000, ddim_steps=50, ddpm_T=100, reps=3, harness_steps=50,
                 harness_reps=3, n_cnn=10_000, n_inception=10_000, inception_batch=250, flops_steps=10,
                 flops_sample_n=500, pixelcnn_n=500, ddpm28=True, compile=True, compile_steps=10, paper=True,
                 layouts=True),
    "smoke": dict(peak_sizes=(32, 64), peak_reps=2, batch=4, ddim_steps=2, ddpm_T=3, reps=1, harness_steps=2, harness_reps=1,
                  n_cnn=200, n_inception=0, inception_batch=8, flops_steps=1, flops_sample_n=2, pixelcnn_n=1,
                  ddpm28=False, compile=False, compile_steps=1, families=["independent", "ddpm", "pixelcnn"],
                  preset="tiny"),
}


SECTIONS = ("peak", "sampling", "harness", "fid", "flops", "paper", "layouts", "pixelcnn", "compile")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_of(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def registry():
    from genbench.plugins import get_registry

    return get_registry()


#: the DDPM recipe the comparisons pin (an eps-predicting U-Net with fixed variances, as diffusers' UNet2DModel +
#: DDPMScheduler/DDIMScheduler): the quick preset's network whatever its loss/variance options become
DDPM_PINNED = {"learn_sigma": False, "loss": "simple"}


def build(reg, name: str, preset: str, spec: DataSpec, device: torch.device, **overrides: Any):
    cls = reg.models.get(name)
    if name == "ddpm":
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        overrides = {**{k: v for k, v in DDPM_PINNED.items() if k in fields}, **overrides}
    config = resolve_config(cls, preset, spec, {k: v for k, v in overrides.items()})
    torch.manual_seed(0)
    return cls(config, spec, device)


def random_unit(spec: DataSpec, n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, spec.levels, (n, *spec.shape), generator=g).float() / (spec.levels - 1)).to(device)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------- 1 peak
def bench_peak(device: torch.device, precisions: list[str], sizes: tuple[int, ...], reps: int) -> dict[str, Any]:
    """GFLOP/s of n x n @ n x n matmuls (2 n^3 FLOP), best of ``reps`` after a warm-up (fewer reps for larger n,
    at least 3), for every n in ``sizes``; the peak of a precision is the best over the sizes (which size wins
    depends on the machine: on an AMX Xeon n=2048 in bf16 ran 1.6x faster than n=1024, on an AVX512-BF16 EPYC
    n=512 was the fastest), so a "% of peak" is never flattered by a size that suits the machine badly."""
    out: dict[str, Any] = {}
    for p in precisions:
        by_n: dict[str, float] = {}
        tf32_by_n: dict[str, float] = {}
        for n in sizes:
            n_reps = max(3, int(reps * min(1.0, (1024 / n) ** 3)))
            a = torch.randn(n, n, device=device, dtype=DTYPES[p])
            b = torch.randn(n, n, device=device, dtype=DTYPES[p])
            a @ b
            best = min(seconds_of(lambda: a @ b, device) for _ in range(n_reps))
            by_n[str(n)] = 2 * n**3 / best / 1e9
            if p == "fp32" and device.type == "cuda":
                # fp32 tensors on TF32 tensor cores: what cuDNN's convolutions use by default (allow_tf32), so the
                # denominator of fp32 runs on a GPU
                saved = torch.backends.cuda.matmul.allow_tf32
                torch.backends.cuda.matmul.allow_tf32 = True
                try:
                    a @ b
                    best = min(seconds_of(lambda: a @ b, device) for _ in range(n_reps))
                finally:
                    torch.backends.cuda.matmul.allow_tf32 = saved
                tf32_by_n[str(n)] = 2 * n**3 / best / 1e9
        n_best = max(by_n, key=by_n.__getitem__)
        out[p] = {"n": int(n_best), "gflops": by_n[n_best], "gflops_by_n": by_n}
        if tf32_by_n:
            out[p]["tf32_gflops"] = max(tf32_by_n.values())
            out[p]["tf32_gflops_by_n"] = tf32_by_n
    return out


def peak_of(peak: dict[str, Any], precision: str, device: torch.device) -> float:
    """The denominator of a run in ``precision``: its matmul peak; for fp32 on CUDA with cuDNN's TF32 convolutions
    allowed (PyTorch's default) the TF32 peak, since those convolutions run on tensor cores."""
    v = peak[precision]
    if precision == "fp32" and device.type == "cuda" and torch.backends.cudnn.allow_tf32 and "tf32_gflops" in v:
        return float(v["tf32_gflops"])
    return float(v["gflops"])


# ---------------------------------------------------------------------------------------------------- 2 sampling
def diffusers_unet(reg, device: torch.device):
    from genbench_diffusers.network import build_unet

    cls = reg.models.get("diffusers")
    config = resolve_config(cls, "quick", DIGITS, {})
    torch.manual_seed(0)
    return build_unet(config, DIGITS).to(device).eval()


def diffusers_loop(unet, scheduler, steps: int, batch: int, generator: torch.Generator, device: torch.device,
                   **step_kwargs: Any) -> torch.Tensor:
    """What DDIMPipeline / DDPMPipeline run (noise, then one U-Net call and one scheduler step per time step)."""
    scheduler.set_timesteps(steps)
    x = torch.randn(batch, 1, 8, 8, generator=generator).to(device)
    for t in scheduler.timesteps:
        eps = unet(x, t).sample
        x = scheduler.step(eps, t, x, generator=generator, **step_kwargs).prev_sample
    return x


def bench_sampling(reg, device: torch.device, precisions: list[str], batch: int, ddim_steps: int, ddpm_T: int,
                   reps: int, compiled: bool = False) -> dict[str, Any]:
    """images/s of genbench's DDIM and Algorithm-2 samplers vs diffusers' pipelines' loops on an equal U-Net, in
    every precision; with ``compiled`` also both sides through ``genbench.nn.compiled.FrozenCompiled`` (what
    ``compile_sampler`` runs), their compile seconds stated and left out of the images/s."""
    from diffusers import DDIMScheduler, DDPMScheduler

    from genbench.nn.compiled import FrozenCompiled

    ours_ddim = build(reg, "ddpm", "quick", DIGITS, device)
    ours_ddpm = build(reg, "ddpm", "quick", DIGITS, device, T=ddpm_T)
    for m in (ours_ddim, ours_ddpm):
        m.train(False)
    unet = diffusers_unet(reg, device)
    p_ours, p_theirs = n_params(ours_ddim.net), n_params(unet)
    ddim = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True)
    ddpm = DDPMScheduler(num_train_timesteps=ddpm_T, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         variance_type="fixed_small")
    theirs_net = {"unet": unet}  # swapped for its compiled copy below

    cases = {
        f"DDIM-{ddim_steps}": (lambda g: ours_ddim.sample(batch, steps=ddim_steps, generator=g),
                               lambda g: diffusers_loop(theirs_net["unet"], ddim, ddim_steps, batch, g, device, eta=0.0),
                               ddim_steps),
        f"ancestral-{ddpm_T}": (lambda g: ours_ddpm.sample(batch, steps=None, generator=g),
                                lambda g: diffusers_loop(theirs_net["unet"], ddpm, ddpm_T, batch, g, device), ddpm_T),
    }
    out: dict[str, Any] = {"batch": batch, "params_genbench": p_ours, "params_diffusers": p_theirs,
                           "params_ratio": p_theirs / p_ours, "image": "1x8x8", "settings": {}, "compiled": {}}

    def timed(p: str) -> dict[str, tuple[float, float]]:
        res = {}
        for name, (ours, theirs, nfe) in cases.items():
            t_o, t_t = [], []
            for r in range(reps + 1):  # the first round warms up both (and compiles, where compiled)
                with torch.inference_mode(), autocast(p, device):
                    a = seconds_of(lambda: ours(torch.Generator().manual_seed(r)), device)
                    b = seconds_of(lambda: theirs(torch.Generator().manual_seed(r)), device)
                if r:
                    t_o.append(a)
                    t_t.append(b)
            res[name] = (statistics.median(t_o), statistics.median(t_t))
        return res

    for p in precisions:
        eager = timed(p)
        for name, (o, t) in eager.items():
            nfe = cases[name][2]
            out["settings"][f"{name} {p}"] = {
                "sampler": name, "precision": p, "nfe": nfe, "genbench_images_per_second": batch / o,
                "diffusers_images_per_second": batch / t, "speedup_genbench_over_diffusers": t / o,
            }
            print(f"sampling {name} {p}: genbench {batch / o:.1f} img/s, diffusers {batch / t:.1f} img/s", flush=True)
        if not compiled:
            continue
        # one compiled copy of each side's network serves both samplers (the Algorithm-2 model gets the DDIM
        # model's compiled network: same architecture, and the time of a call does not depend on the weights)
        with ours_ddim.compiled_sampling() as frozen_ours:
            saved = ours_ddpm.averaged["ema"]
            ours_ddpm.averaged["ema"] = frozen_ours
            theirs_net["unet"] = frozen_theirs = FrozenCompiled(unet)
            try:
                comp = timed(p)
            finally:
                ours_ddpm.averaged["ema"] = saved
                theirs_net["unet"] = unet
        for name, (o, t) in comp.items():
            nfe = cases[name][2]
            e_o, e_t = eager[name]
            saved_per_call = (e_o - o) / nfe
            out["compiled"][f"{name} {p}"] = {
                "sampler": name, "precision": p, "nfe": nfe, "batch": batch,
                "genbench_compiled": frozen_ours.compiled, "diffusers_compiled": frozen_theirs.compiled,
                "genbench_images_per_second": batch / o, "diffusers_images_per_second": batch / t,
                "genbench_compile_seconds": frozen_ours.compile_seconds,
                "diffusers_compile_seconds": frozen_theirs.compile_seconds,
                "speedup_genbench_over_diffusers_compiled": t / o,
                "speedup_genbench_over_diffusers_eager": e_t / o,
                "genbench_break_even_calls": (frozen_ours.compile_seconds / saved_per_call
                                              if saved_per_call > 0 and frozen_ours.compile_seconds else None),
            }
            print(f"sampling compiled {name} {p}: genbench {batch / o:.1f} img/s (compile "
                  f"{frozen_ours.compile_seconds:.0f}s), diffusers {batch / t:.1f} img/s (compile "
                  f"{frozen_theirs.compile_seconds:.0f}s)", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------- 3 harness
def bench_harness(reg, device: torch.device, precision: str, steps: int, reps: int,
                  preset: str = "quick") -> dict[str, Any]:
    """genbench's Trainer (what ``genbench run`` times as train seconds) vs a bare loop doing the same work."""
    from genbench.data.files import resolve_dataset
    from genbench.runner.training import Trainer

    data = resolve_dataset("digits", reg, None).load()
    x_train = data.unit("train")
    overrides = dict(max_steps=steps, max_minutes=None, eval_every=10**9, precision=precision)

    def genbench_loop(steps: int = steps) -> float:
        model = build(reg, "ddpm", preset, data.spec, device, **{**overrides, "max_steps": steps})
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, data, model.config, 0, Path(tmp), device, progress=False,
                              checkpoint_every_steps=None, checkpoint_every_seconds=None)
            model.likelihood = None  # no validation pass: it is not training time either way
            trainer.train()
        return trainer.seconds / steps

    def bare_loop(steps: int = steps) -> float:
        """A plain PyTorch loop: the same batch indexing (a permutation per epoch), then the model's own
        ``train_step`` under the same autocast -- no budget, checks, curves, progress or checkpoint logic."""
        model = build(reg, "ddpm", preset, data.spec, device, **{**overrides, "max_steps": steps})
        model.train(True)
        bs = model.config.batch_size
        per_epoch = len(x_train) // bs
        sync(device)
        t0 = time.perf_counter()
        for step in range(steps):
            epoch, pos = divmod(step, per_epoch)
            perm = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
            x = x_train[perm[pos * bs:(pos + 1) * bs]].to(device)
            with autocast(precision, device):
                model.train_step(x)
            model.step += 1
        sync(device)
        return (time.perf_counter() - t0) / steps

    batch = build(reg, "ddpm", preset, data.spec, device).config.batch_size
    genbench_loop(2), bare_loop(2)  # warm-up: first-call costs paid by neither measured loop
    ours, bare = [], []
    for r in range(reps):  # interleaved, the order alternating, so that drift in machine load hits both alike
        for loop in ((genbench_loop, bare_loop) if r % 2 == 0 else (bare_loop, genbench_loop)):
            (ours if loop is genbench_loop else bare).append(loop())
    o, b = statistics.median(ours), statistics.median(bare)
    # the overhead from the pairs measured back to back (each pair sees the same machine load), median over pairs;
    # the range over pairs says how much of it is noise (on a shared 2-core machine runs differ by +-7%)
    ratios = [a / c - 1 for a, c in zip(ours, bare)]
    overhead = statistics.median(ratios)
    print(f"harness: genbench {o * 1e3:.1f} ms/step, bare {b * 1e3:.1f} ms/step ({overhead:+.1%}, pairs "
          f"{min(ratios):+.1%} to {max(ratios):+.1%})", flush=True)
    return {"model": f"ddpm {preset} (digits 8x8)", "batch": batch, "steps": steps, "precision": precision,
            "genbench_ms_per_step": o * 1e3, "bare_ms_per_step": b * 1e3, "overhead": overhead,
            "overhead_pairs": ratios}


# ---------------------------------------------------------------------------------------------------- 4 fid
def bench_fid(n_cnn: int, n_inception: int, batch: int, device: torch.device = torch.device("cpu")) -> dict[str, Any]:
    import metrics as mb  # bench/metrics.py

    out = {"classifier_cnn": mb.ratios(mb.bench_cnn(n_cnn))}
    print(f"fid classifier-CNN ({n_cnn}/set): " + ", ".join(
        f"{k} {v['seconds']:.2f}s" for k, v in out["classifier_cnn"].items() if isinstance(v, dict) and "seconds" in v),
        flush=True)
    if n_inception:
        try:
            out["inception"] = mb.ratios(mb.bench_inception(n_inception, batch, device))
            print(f"fid inception ({n_inception}/set, {device}): " + ", ".join(
                f"{k} {v['seconds']:.1f}s" for k, v in out["inception"].items() if isinstance(v, dict) and "seconds" in v),
                flush=True)
        except Exception as exc:  # weights not available offline
            out["inception"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    else:
        out["inception"] = {"skipped": "not in this mode"}
    return out


# ---------------------------------------------------------------------------------------------------- 5 flops
def flops_of(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def bench_family(reg, name: str, spec: DataSpec, device: torch.device, precisions: list[str], steps: int,
                 sample_n: int, peak: dict[str, Any], preset: str = "quick", sample: bool = True,
                 sample_steps: int | None | str = "preset", **overrides: Any) -> dict[str, Any]:
    model = build(reg, name, preset, spec, device, **overrides)
    c = model.config
    x = random_unit(spec, c.batch_size, device)
    model.train(True)
    model.train_step(x)  # warm-up (also leaves any start-up phase)
    model.step += 1
    train_flops = flops_of(lambda: model.train_step(x))
    model.step += 1
    row: dict[str, Any] = {"family": name, "image": "x".join(map(str, spec.shape)), "batch": c.batch_size,
                           "train_flops_per_image": train_flops / c.batch_size}
    if sample_steps == "preset":
        sample_steps = c.sample_steps[0] if c.sample_steps else None
    if sample:
        model.train(False)
        with torch.inference_mode():
            # a first call outside the count: one-time work (a GAN's batch-norm recalibration, caches) is not per image
            model.sample(sample_n, steps=sample_steps, generator=torch.Generator().manual_seed(0))
            sample_flops = flops_of(lambda: model.sample(sample_n, steps=sample_steps, generator=torch.Generator().manual_seed(0)))
        row.update(sampler=model.sampler_name(sample_steps), sample_n=sample_n,
                   sample_flops_per_image=sample_flops / sample_n)
    # training steps interleaved over the precisions (the order rotating), so that machine drift hits them alike
    # (timed one precision after the other on a drifting host, the ratios disagreed with the grid cells')
    model.train(True)
    times: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(steps):
        for p in precisions[r % len(precisions):] + precisions[:r % len(precisions)]:
            with autocast(p, device):
                times[p].append(seconds_of(lambda: model.train_step(x), device))
            model.step += 1
    for p in precisions:
        t = statistics.median(times[p])
        gf = train_flops / t / 1e9
        row[p] = {"train_ms_per_step": t * 1e3, "train_images_per_second": c.batch_size / t, "train_gflops": gf,
                  "train_fraction_of_peak": gf / peak_of(peak, p, device)}
        if sample:
            model.train(False)
            with torch.inference_mode(), autocast(p, device):
                draw = lambda: model.sample(sample_n, steps=sample_steps, generator=torch.Generator().manual_seed(1))  # noqa: E731
                draw()  # warm-up: the first call at a new batch shape builds the kernels' primitives
                s = seconds_of(draw, device)
            sgf = sample_flops / s / 1e9
            row[p].update(sample_images_per_second=sample_n / s, sample_gflops=sgf,
                          sample_fraction_of_peak=sgf / peak_of(peak, p, device))
    print(f"flops {name} {row['image']}: train {row['train_flops_per_image'] / 1e6:.1f} MFLOP/image; "
          + "; ".join(f"{p} {row[p]['train_gflops']:.1f} GFLOP/s ({row[p]['train_fraction_of_peak']:.0%} of peak)"
                      for p in precisions), flush=True)
    return row


def bench_flops(reg, device: torch.device, precisions: list[str], families: list[str], steps: int, sample_n: int,
                peak: dict[str, Any], ddpm28: bool, preset: str = "quick") -> list[dict[str, Any]]:
    rows = []
    for name in families:
        try:
            rows.append(bench_family(reg, name, DIGITS, device, precisions, steps, sample_n, peak, preset=preset))
        except Exception as exc:  # one family's failure is recorded, the others still run
            rows.append({"family": name, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
            print(f"flops {name}: {rows[-1]['error']}", flush=True)
    if ddpm28:  # the batch the 28x28 presets train with (quick and standard: 128)
        rows.append(bench_family(reg, "ddpm", DataSpec(1, 28, 28, 256), device, precisions, steps, sample_n, peak,
                                 sample=False))
    return rows


def bench_paper(reg, device: torch.device, precisions: list[str], steps: int, peak: dict[str, Any],
                sample_n: int = 256, sample_steps: int = 50, preset: str = "paper") -> dict[str, Any]:
    """The DDPM ``paper`` preset (Ho et al.'s 35.7M-parameter CIFAR-10 U-Net, batch 128) on CIFAR-shaped data
    (3x32x32, 256 levels, random images: the speed does not depend on them): training images/s and sampling
    images/s (DDIM-``sample_steps``, batch ``sample_n``) per precision, GFLOP/s and the fraction of the measured
    matmul peak -- what a user of a GPU can expect from the paper-sized model."""
    row = bench_family(reg, "ddpm", DataSpec(3, 32, 32, 256), device, precisions, steps, sample_n, peak,
                       preset=preset, sample_steps=sample_steps)
    row["params"] = n_params(build(reg, "ddpm", preset, DataSpec(3, 32, 32, 256), torch.device("cpu")).net)
    return row


@contextlib.contextmanager
def kernel_settings(device: torch.device, precision: str, kernels: str):
    """cuDNN / cuBLAS flags for one layout case, restored after: ``precision`` "fp32" strict (no TF32 anywhere),
    "tf32" (TF32 matmuls and convolutions, fp32 storage) or "bf16" (autocast; TF32 as PyTorch's defaults);
    ``kernels`` "deterministic" (cuDNN deterministic, no autotuning: what ``genbench run`` uses on CUDA,
    ``genbench.runner.device.deterministic_kernels``) or "autotuned" (cudnn.benchmark, non-deterministic)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    try:
        if device.type == "cuda":
            cudnn.deterministic, cudnn.benchmark = kernels == "deterministic", kernels == "autotuned"
            cudnn.allow_tf32 = matmul.allow_tf32 = precision == "tf32"
            if precision == "bf16":
                cudnn.allow_tf32, matmul.allow_tf32 = True, False  # PyTorch's defaults
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def bench_layouts(reg, device: torch.device, precisions: list[str], steps: int,
                  cases: list[tuple[str, str, DataSpec, int]] | None = None) -> list[dict[str, Any]]:
    """The DDPM training step and sampler network call under every precision x memory format (contiguous NCHW,
    channels_last) x kernel choice (CUDA: deterministic / autotuned cuDNN), each case a fresh model with the same
    seed: which settings a device should run with.  ``cases``: (label, preset, data spec, batch)."""
    if cases is None:
        cases = [("ddpm quick 28x28", "quick", DataSpec(1, 28, 28, 256), 128)]
        if device.type == "cuda":
            cases.append(("ddpm paper 32x32x3", "paper", DataSpec(3, 32, 32, 256), 128))
    precs = list(precisions) + (["tf32"] if device.type == "cuda" and "fp32" in precisions else [])
    kernel_modes = ["deterministic", "autotuned"] if device.type == "cuda" else ["default"]
    rows = []
    for label, preset, spec, batch in cases:
        for p in precs:
            for fmt in ("contiguous", "channels_last"):
                for kernels in kernel_modes:
                    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
                    with kernel_settings(device, p, kernels):
                        model = build(reg, "ddpm", preset, spec, device, batch_size=batch)
                        for net in (model.net, *model.averaged.values()):
                            net.to(memory_format=mf)
                        x = random_unit(spec, batch, device).contiguous(memory_format=mf)
                        amp = "bf16" if p == "bf16" else "fp32"
                        model.train(True)

                        def one_step() -> None:
                            with autocast(amp, device):
                                model.train_step(x)
                            model.step += 1

                        for _ in range(3):  # warm-up (autotuning happens here)
                            one_step()
                        train = statistics.median(seconds_of(one_step, device) for _ in range(steps))
                        net = model.sampling_net
                        xs = torch.randn(batch, *spec.shape, device=device).contiguous(memory_format=mf)
                        ts = torch.full((batch,), 500, device=device, dtype=torch.long)

                        def call() -> None:
                            with torch.inference_mode(), autocast(amp, device):
                                net(xs, ts)

                        for _ in range(3):
                            call()
                        sample_call = statistics.median(seconds_of(call, device) for _ in range(steps))
                    row = {"case": label, "precision": p, "memory_format": fmt, "kernels": kernels, "batch": batch,
                           "train_ms_per_step": train * 1e3, "train_images_per_second": batch / train,
                           "net_call_ms": sample_call * 1e3}
                    rows.append(row)
                    print(f"layout {label} {p} {fmt} {kernels}: train {train * 1e3:.1f} ms/step, net call "
                          f"{sample_call * 1e3:.2f} ms", flush=True)
                    del model
    return rows


# ---------------------------------------------------------------------------------------------------- 6 pixelcnn
def bench_pixelcnn(reg, device: torch.device, n: int, reps: int, preset: str = "quick") -> dict[str, Any]:
    fast = build(reg, "pixelcnn", preset, DIGITS, device, sampler="fast")
    naive = build(reg, "pixelcnn", preset, DIGITS, device, sampler="naive")
    naive.load_state_dict(fast.state_dict())
    for m in (fast, naive):
        m.train(False)
    tf, tn, same = [], [], True
    for r in range(reps):
        with torch.inference_mode():
            sf = time.perf_counter(); a = fast.sample(n, generator=torch.Generator().manual_seed(r)); sf = time.perf_counter() - sf  # noqa: E702
            sn = time.perf_counter(); b = naive.sample(n, generator=torch.Generator().manual_seed(r)); sn = time.perf_counter() - sn  # noqa: E702
        same = same and torch.equal(a, b)
        tf.append(sf)
        tn.append(sn)
    f, m = statistics.median(tf), statistics.median(tn)
    print(f"pixelcnn: cached {n / f:.1f} img/s, naive {n / m:.1f} img/s ({m / f:.1f}x)", flush=True)
    return {"images": n, "cached_images_per_second": n / f, "naive_images_per_second": n / m, "speedup": m / f,
            "same_draws": bool(same)}


# ---------------------------------------------------------------------------------------------------- 7 compile
def bench_compile(reg, device: torch.device, precision: str, steps: int) -> dict[str, Any]:
    """Compile seconds and steady-state times of the DDPM quick training step and sampler net call."""
    model = build(reg, "ddpm", "quick", DIGITS, device, precision=precision)
    x = random_unit(DIGITS, model.config.batch_size, device)
    budget_steps = model.config.max_steps

    def train_times(n: int) -> list[float]:
        out = []
        for _ in range(n):
            with autocast(precision, device):
                out.append(seconds_of(lambda: model.train_step(x), device))
        return out

    train_times(1)
    eager = statistics.median(train_times(steps))
    from genbench.nn.compiled import FrozenCompiled
    from genbench.runner.compiled_sampling import COMPILE_MIN_EVALUATIONS, planned_evaluations, planned_sampler_calls

    net = model.net
    ema = model.averaged["ema"]
    xs = torch.randn(500, *DIGITS.shape, device=device)
    ts = torch.full((500,), 500, device=device, dtype=torch.long)

    def call() -> None:
        with torch.inference_mode(), autocast(precision, device):
            ema(xs, ts)

    call()
    eager_call = statistics.median(seconds_of(call, device) for _ in range(steps))
    net.compile()
    first = train_times(1)[0]
    compiled = statistics.median(train_times(steps))
    # the sampler's network as compile_sampler runs it: a frozen compiled copy (genbench.nn.compiled)
    frozen = FrozenCompiled(ema)

    def call_frozen() -> None:
        with torch.inference_mode(), autocast(precision, device):
            frozen(xs, ts)

    first_call = seconds_of(call_frozen, device)
    compiled_call = statistics.median(seconds_of(call_frozen, device) for _ in range(steps))

    def break_even(compile_s: float, before: float, after: float) -> float | None:
        return compile_s / (before - after) if after < before else None

    train_compile = first - compiled
    call_compile = first_call - compiled_call
    be = break_even(train_compile, eager, compiled)
    be_call = break_even(call_compile, eager_call, compiled_call)
    calls = 2 * model.nfe(50)  # the quick preset's samples: 1000 images in batches of 500, DDIM-50
    standard = build(reg, "ddpm", "standard", DIGITS, device)
    standard_calls = planned_sampler_calls(standard, standard.config)
    standard_evaluations = planned_evaluations(standard, standard.config)
    out = {
        "precision": precision,
        "train_step": {"eager_ms": eager * 1e3, "compiled_ms": compiled * 1e3, "compile_s": train_compile,
                       "break_even_steps": be, "preset_budget_steps": budget_steps,
                       "pays_within_quick_budget": be is not None and be < budget_steps},
        "sampler_call_batch500": {"eager_ms": eager_call * 1e3, "compiled_ms": compiled_call * 1e3,
                                  "compile_s": call_compile, "break_even_calls": be_call, "calls_in_quick_preset": calls,
                                  "pays_within_quick_preset": be_call is not None and be_call < calls,
                                  "calls_in_standard_preset": standard_calls,
                                  "pays_within_standard_preset": be_call is not None and be_call < standard_calls,
                                  "evaluations_in_standard_preset": standard_evaluations,
                                  "compile_sampler_auto_min_evaluations": COMPILE_MIN_EVALUATIONS,
                                  "how": "genbench.nn.compiled.FrozenCompiled (Inductor, frozen weights)"},
    }
    print(f"compile: train {eager * 1e3:.0f} -> {compiled * 1e3:.0f} ms/step, compile {train_compile:.0f}s "
          f"(break-even {be if be is None else round(be)} steps of {budget_steps}); sampler call "
          f"{eager_call * 1e3:.0f} -> {compiled_call * 1e3:.0f} ms, compile {call_compile:.0f}s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------- report
def fmt(v: Any, spec: str = ".1f") -> str:
    return "—" if v is None else format(v, spec)


def markdown(res: dict[str, Any]) -> str:
    failed = {k: v["error"] for k, v in res.items() if k in SECTIONS and isinstance(v, dict) and "error" in v}
    if failed:  # the sections that did run are still worth a table: the failed ones as a list, then the rest
        ok = {k: v for k, v in res.items() if k not in failed}
        ok.setdefault("peak", {})
        empty = {"sampling": {"settings": {}, "params_genbench": 0, "params_diffusers": 0, "params_ratio": float("nan"),
                              "batch": 0, "image": "—"}, "harness": {}, "fid": {}, "flops": [],
                 "pixelcnn": None, "layouts": None}
        for k in failed:
            if k in empty:
                ok[k] = empty[k]
        text = markdown(ok)
        return text + "\n## Sections that failed\n\n" + "".join(f"- {k}: {v}\n" for k, v in failed.items())
    L = [f"# genbench performance ({res['when']})", "",
         f"Machine: {res['machine']}; device {res['device']}; torch threads {res['threads']}; "
         f"load average at start {res['loadavg']}; mode {res['mode']}.", "",
         f"Command: `{res['command']}`", ""]
    if res.get("remeasured"):
        L += [f"Re-measured later with `{res['command_remeasure']}` (load average {res['loadavg_remeasure']}): "
              + ", ".join(f"{k} ({v})" for k, v in res["remeasured"].items()) + ".", ""]
    pk = res["peak"]
    sizes = sorted({int(n) for v in pk.values() for n in v.get("gflops_by_n", {})})
    L += ["## Matmul peak (measured)", "", "The peak of a precision is its best n x n matmul over the sizes tried "
          "(the denominator of every \"% peak\" below).", "",
          "| precision | peak GFLOP/s | " + "".join(f"n={n} | " for n in sizes), "|---|--:|" + "--:|" * len(sizes)]
    L += [f"| {p} | {v['gflops']:.1f} | " + "".join(f"{fmt(v.get('gflops_by_n', {}).get(str(n)))} | " for n in sizes)
          for p, v in pk.items()]
    L += [f"| fp32 on TF32 tensor cores (the denominator of fp32 rows on CUDA, whose convolutions use TF32) | "
          f"{v['tf32_gflops']:.1f} |" for p, v in pk.items() if "tf32_gflops" in v] + [""]
    s = res["sampling"]
    L += ["## Sampling: genbench vs diffusers (equal network size, NFE and batch)", "",
          f"U-Net parameters: genbench {s['params_genbench']:,}, diffusers UNet2DModel {s['params_diffusers']:,} "
          f"(ratio {s['params_ratio']:.3f}); batch {s['batch']}; {s['image']}.", "",
          "| sampler | precision | NFE | genbench images/s | diffusers images/s | genbench / diffusers |",
          "|---|---|--:|--:|--:|--:|"]
    for v in s["settings"].values():
        L.append(f"| {v['sampler']} | {v['precision']} | {v['nfe']} | {v['genbench_images_per_second']:.1f} | "
                 f"{v['diffusers_images_per_second']:.1f} | {v['speedup_genbench_over_diffusers']:.2f}x |")
    if s.get("compiled"):
        L += ["", "Both networks compiled (`genbench.nn.compiled.FrozenCompiled`: torch.compile, Inductor with frozen "
              "weights; what `compile_sampler` runs). Steady-state images/s; the one-off compile seconds beside them; "
              "break-even: genbench's compile seconds over the seconds it saves per network call of this batch.", "",
              "| sampler | precision | genbench images/s | compile s | diffusers images/s | compile s | "
              "genbench / diffusers (both compiled) | genbench compiled / diffusers eager | break-even calls |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
        for v in s["compiled"].values():
            L.append(f"| {v['sampler']} | {v['precision']} | {v['genbench_images_per_second']:.1f} | "
                     f"{fmt(v['genbench_compile_seconds'])} | {v['diffusers_images_per_second']:.1f} | "
                     f"{fmt(v['diffusers_compile_seconds'])} | {v['speedup_genbench_over_diffusers_compiled']:.2f}x | "
                     f"{v['speedup_genbench_over_diffusers_eager']:.2f}x | {fmt(v['genbench_break_even_calls'], '.0f')} |")
    L += ["", "## Harness overhead: genbench's training loop vs a bare PyTorch loop", ""]
    for h in res["harness"].values():
        L.append(f"- {h['model']}, batch {h['batch']}, {h['steps']} steps, {h['precision']}: genbench "
                 f"{h['genbench_ms_per_step']:.1f} ms/step, bare loop {h['bare_ms_per_step']:.1f} ms/step: "
                 f"**{h['overhead']:+.1%}** (goal <= +3%)"
                 + (f"; median of {len(h['overhead_pairs'])} back-to-back pairs, which range from "
                    f"{min(h['overhead_pairs']):+.1%} to {max(h['overhead_pairs']):+.1%}." if h.get("overhead_pairs")
                    else "."))
    L.append("")
    L += ["## FID pipeline: images -> number", "",
          "| extractor | implementation | images per set | seconds | images/s | FID | time ratio (theirs/ours) |",
          "|---|---|--:|--:|--:|--:|--:|"]
    for key in ("classifier_cnn", "inception"):
        sec = res["fid"].get(key, {})
        if "skipped" in sec:
            L.append(f"| {key} | skipped: {sec['skipped']} | | | | | |")
            continue
        for name, v in sec.items():
            if isinstance(v, dict) and "seconds" in v:
                r = sec.get("ratios", {}).get(name)
                L.append(f"| {key} | {name} | {sec['n_per_set']} | {v['seconds']:.2f} | "
                         f"{fmt(v.get('images_per_second'))} | {v['fid']:.4f} | "
                         f"{fmt(r['time_ratio_theirs_over_ours'], '.2f') if r else '1'} |")
    L += ["", f"## FLOPs and achieved throughput ({res.get('preset', 'quick')} presets, digits 8x8 unless stated)", "",
          "| family | image | batch | train MFLOP/image | sampler | sampler MFLOP/image | "
          + " | ".join(f"{p} train GFLOP/s (% peak) | {p} sampler GFLOP/s (% peak)" for p in pk) + " |",
          "|---|---|--:|--:|---|--:|" + "--:|--:|" * len(pk)]
    for r in res["flops"]:
        if "error" in r:
            L.append(f"| {r['family']} | error: {r['error']} |" + " |" * (5 + 2 * len(pk)))
            continue
        cells = []
        for p in pk:
            v = r.get(p, {})
            cells.append(f"{fmt(v.get('train_gflops'))} ({fmt(100 * v['train_fraction_of_peak'], '.0f')}%)" if v else "—")
            cells.append(f"{fmt(v.get('sample_gflops'))} ({fmt(100 * v['sample_fraction_of_peak'], '.0f')}%)"
                         if v.get("sample_gflops") is not None else "—")
        L.append(f"| {r['family']} | {r['image']} | {r['batch']} | {r['train_flops_per_image'] / 1e6:.2f} | "
                 f"{r.get('sampler', '—')} | {fmt(r.get('sample_flops_per_image', None) and r['sample_flops_per_image'] / 1e6, '.2f')} | "
                 + " | ".join(cells) + " |")
    pp = res.get("paper")
    if pp and "error" not in pp:
        L += ["", f"## DDPM paper preset on CIFAR-shaped data ({pp['image']}, {pp['params']:,} parameters)", "",
              "| precision | train ms/step (batch " + str(pp["batch"]) + ") | train images/s | train GFLOP/s (% peak) | "
              f"{pp['sampler']} images/s (batch {pp.get('sample_n', '—')}) | sampler GFLOP/s (% peak) |",
              "|---|--:|--:|--:|--:|--:|"]
        for p in pk:
            v = pp.get(p)
            if v:
                L.append(f"| {p} | {v['train_ms_per_step']:.1f} | {v['train_images_per_second']:.0f} | "
                         f"{v['train_gflops']:.0f} ({100 * v['train_fraction_of_peak']:.0f}%) | "
                         f"{v['sample_images_per_second']:.1f} | {v['sample_gflops']:.0f} "
                         f"({100 * v['sample_fraction_of_peak']:.0f}%) |")
        L.append(f"Training FLOPs {pp['train_flops_per_image'] / 1e9:.2f} GFLOP/image; sampling "
                 f"{pp['sample_flops_per_image'] / 1e9:.1f} GFLOP/image.")
    elif pp:
        L += ["", f"## DDPM paper preset on CIFAR-shaped data: error {pp['error']}"]
    lay = res.get("layouts")
    if lay and not (isinstance(lay, dict) and "error" in lay):
        L += ["", "## Precision, memory format and kernels (DDPM training step and sampler network call)", "",
              "fp32: strict (no TF32); tf32: fp32 storage on TF32 tensor cores; bf16: autocast. deterministic: cuDNN's "
              "deterministic kernels without autotuning (what `genbench run` uses on CUDA); autotuned: cudnn.benchmark.",
              "", "| case | precision | memory format | kernels | batch | train ms/step | train images/s | net call ms |",
              "|---|---|---|---|--:|--:|--:|--:|"]
        for r in lay:
            L.append(f"| {r['case']} | {r['precision']} | {r['memory_format']} | {r['kernels']} | {r['batch']} | "
                     f"{r['train_ms_per_step']:.1f} | {r['train_images_per_second']:.0f} | {r['net_call_ms']:.2f} |")
    pc = res["pixelcnn"]
    if pc:
        L += ["", "## PixelCNN: row-cached sampler vs naive loop", "",
              f"{pc['images']} images: cached {pc['cached_images_per_second']:.2f} images/s, naive "
              f"{pc['naive_images_per_second']:.2f} images/s: **{pc['speedup']:.1f}x** (same draws: {pc['same_draws']}).",
              ""]
    c = res.get("compile")
    if c and "skipped" not in c:
        t, s2 = c["train_step"], c["sampler_call_batch500"]
        L += ["## torch.compile (DDPM quick, " + c["precision"] + ")", "",
              "| what | eager ms | compiled ms | compile s | break-even | budget | pays |", "|---|--:|--:|--:|--:|--:|---|",
              f"| training step | {t['eager_ms']:.1f} | {t['compiled_ms']:.1f} | {t['compile_s']:.1f} | "
              f"{fmt(t['break_even_steps'], '.0f')} steps | {t['preset_budget_steps']} steps | {t['pays_within_quick_budget']} |",
              f"| sampler net call (batch 500), frozen | {s2['eager_ms']:.1f} | {s2['compiled_ms']:.1f} | "
              f"{s2['compile_s']:.1f} | {fmt(s2['break_even_calls'], '.0f')} calls | {s2['calls_in_quick_preset']} calls "
              f"(quick) | {s2['pays_within_quick_preset']} |"]
        if "calls_in_standard_preset" in s2:
            L.append(f"| sampler net call (batch 500), frozen | | | | | {s2['calls_in_standard_preset']} calls "
                     f"(standard) | {s2['pays_within_standard_preset']} |")
            L += ["", f"`compile_sampler = \"auto\"` compiles from {s2['compile_sampler_auto_min_evaluations']:,} planned "
                      f"network evaluations (images x NFE; the standard DDPM plans {s2['evaluations_in_standard_preset']:,}; "
                      "genbench.runner.compiled_sampling).", ""]
        else:
            L.append("")
    else:
        L += ["## torch.compile", "", f"Not measured ({(c or {}).get('skipped', 'not in this mode')}).", ""]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="a smoke run (< 3 minutes on 2 cores)")
    ap.add_argument("--smoke", action="store_true", help="seconds: the test suite's run")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    ap.add_argument("--precisions", default=None, help="comma-separated (default: fp32, and bf16 where native)")
    ap.add_argument("--out", default=str(RESULTS / "perf.json"))
    ap.add_argument("--sections", default=None, help="re-measure only these (comma-separated of " + ",".join(SECTIONS)
                    + "), keeping the other sections of --out")
    args = ap.parse_args(argv)
    chosen = SECTIONS if args.sections is None else tuple(args.sections.split(","))
    if set(chosen) - set(SECTIONS):
        ap.error(f"--sections takes {','.join(SECTIONS)}; got {args.sections}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda asked for but no CUDA device is visible; use --device cpu")
    device = torch.device(args.device)
    mode = "smoke" if args.smoke else "quick" if args.quick else "cuda" if device.type == "cuda" else "full"
    z = SIZES[mode]
    if args.precisions:
        precisions = args.precisions.split(",")
    else:
        native = cpu_has_bf16() if device.type == "cpu" else torch.cuda.is_bf16_supported(including_emulation=False)
        precisions = ["fp32", "bf16"] if native else ["fp32"]
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(resolve_threads("auto"))
    reg = registry()
    res: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "mode": mode, "device": str(device),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
                   + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(), "loadavg": [round(v, 2) for v in os.getloadavg()],
        "command": "flock /tmp/genbench-cpu.lock .venv/bin/python bench/perf/perf.py"
                   + (f" --device {args.device}" if args.device != "cpu" else "")
                   + (" --quick" if args.quick else "") + (" --smoke" if args.smoke else ""),
        "precisions": precisions,
    }
    out = Path(args.out)
    if args.sections is not None:  # a partial re-measurement: the other sections as they were
        old = json.loads(out.read_text())
        old.pop("stamp", None)
        remeasured = {**old.get("remeasured", {}), **{k: res["when"] for k in chosen}}
        res = {**old, "remeasured": remeasured, "command_remeasure": res["command"] + f" --sections {args.sections}",
               "loadavg_remeasure": res["loadavg"]}
    t_start = time.perf_counter()

    partial_path = out.with_name(out.stem + ".partial.json")

    def partial(section: str) -> None:
        """The JSON so far after each section (no Markdown), beside ``--out`` as <stem>.partial.json and removed
        when the run completes: a run stopped by a time limit keeps what it measured, and the final file's stamp
        does not see a results file the run itself rewrote as "+dirty"."""
        res["seconds_so_far"] = time.perf_counter() - t_start
        write({**res, "partial_after": section}, partial_path.stem, None, folder=out.parent)

    def section(name: str, measure: Callable[[], Any], line: Callable[[Any], str] | None = None) -> None:
        """One section into ``res``; a failure is recorded as {"error": ...} and the next section still runs (a GPU
        check gets one try), then the partial JSON is written."""
        if name not in chosen:
            return
        try:
            res[name] = measure()
            if line is not None:
                print(line(res[name]), flush=True)
        except Exception as exc:
            res[name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            print(f"{name}: {res[name]['error']}", flush=True)
        partial(name)

    preset = z.get("preset", "quick")
    res["preset"] = preset
    families = z.get("families") or [n for n in reg.models.names() if n != "diffusers"]
    section("peak", lambda: bench_peak(device, precisions, z["peak_sizes"], z["peak_reps"]),
            lambda pk: "peak: " + ", ".join(f"{p} {v['gflops']:.1f} GFLOP/s" for p, v in pk.items()))
    section("sampling", lambda: bench_sampling(reg, device, precisions, z["batch"], z["ddim_steps"], z["ddpm_T"],
                                               z["reps"], compiled=z["compile"] and not args.no_compile))
    section("harness", lambda: {p: bench_harness(reg, device, p, z["harness_steps"], z["harness_reps"], preset)
                                for p in precisions})
    section("fid", lambda: bench_fid(z["n_cnn"], z["n_inception"], z["inception_batch"], device))
    section("flops", lambda: bench_flops(reg, device, precisions, families, z["flops_steps"], z["flops_sample_n"],
                                         res["peak"], z["ddpm28"], preset))
    if z.get("paper"):
        section("paper", lambda: bench_paper(reg, device, precisions, z["flops_steps"], res["peak"]))
    if z.get("layouts"):
        section("layouts", lambda: bench_layouts(reg, device, precisions, z["flops_steps"]))
    section("pixelcnn", lambda: bench_pixelcnn(reg, device, z["pixelcnn_n"], max(1, z["reps"]), preset))
    if "compile" not in chosen:
        pass
    elif z["compile"] and not args.no_compile:
        try:
            res["compile"] = bench_compile(reg, device, precisions[-1], z["compile_steps"])
        except Exception as exc:  # no compiler toolchain, unsupported op...
            res["compile"] = {"skipped": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    else:
        res["compile"] = {"skipped": "not in this mode" if not args.no_compile else "--no-compile"}
    res.pop("seconds_so_far", None)
    res["seconds" if args.sections is None else "seconds_remeasure"] = time.perf_counter() - t_start
    write(res, out.stem, markdown(res), folder=out.parent)
    partial_path.unlink(missing_ok=True)
    print(f"wrote {out} and {out.with_suffix('.md')} in {time.perf_counter() - t_start:.0f}s")
    return res


if __name__ == "__main__":
    main()
