"""Sampling and training cost: images/s, latency, NFE, FLOPs per image, peak memory, training time.

Peak memory is measured per sampler setting by the runner while it draws the samples (the CUDA peak is
reset before each draw), so it is the memory sampling at the stated batch size needs, not the process's
high-water mark from training or an earlier cell.  Latency and FLOPs do not depend on the draw and are
measured once per sampler setting (its sampling seed 0).
"""
from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.display import MetricDisplay


class SamplingSpeed(Metric):
    """Throughput at the stated batch size, one-image latency, NFE and FLOPs per image, per sampler."""

    name = "speed"
    needs = "model"  # draws from the model itself: not for samples made elsewhere (genbench eval)
    description = "images/s (batch size stated), seconds for one image, NFE and FLOPs per image, peak CUDA memory"
    display = {
        "images_per_second": MetricDisplay("images/s", "cost", direction="higher"),
        "latency": MetricDisplay("ms/image (batch 1)", "cost", scale=1e3, direction="lower"),
        "nfe": MetricDisplay("NFE", "cost", direction="lower"),
        "flops_per_image": MetricDisplay("FLOPs/image", "cost", direction="lower"),
        "peak_memory": MetricDisplay("peak MiB", "cost", direction="lower"),
        "sampler_compile_seconds": MetricDisplay("compile s", "cost", direction="lower"),
    }

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        compile_s = next((s.compile_seconds for s in ctx.samples if s.compiled and s.compile_seconds is not None), None)
        if compile_s is not None:  # once per cell: the compile served every sampler setting
            rows.append(Measurement("sampler_compile_seconds", compile_s, "s", False,
                                    details={"what": "torch.compile of the sampler's network (Inductor, frozen "
                                                     "weights); left out of every setting's images/s"}))
        for s in ctx.samples:
            rows.append(Measurement("images_per_second", s.n / s.seconds, "images/s", True, n=s.n, sampler=s.label,
                                    sampling_seed=s.sampling_seed,
                                    details={"batch_size": s.batch_size, "device": str(ctx.device),
                                             "compiled_sampler": s.compiled,
                                             **({"compile_seconds": s.compile_seconds} if s.compiled else {})}))
            rows.append(Measurement("nfe", float(s.nfe), "evaluations/image", False, sampler=s.label,
                                    sampling_seed=s.sampling_seed))
            if s.peak_memory_mib is not None:
                rows.append(Measurement("peak_memory", s.peak_memory_mib, "MiB", False, n=s.n, sampler=s.label,
                                        sampling_seed=s.sampling_seed, details={"batch_size": s.batch_size}))
            if s.sampling_seed != 0:
                continue
            gen = torch.Generator(device="cpu").manual_seed(ctx.seed)
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.inference_mode(), run_precision(ctx):
                ctx.model.sample(1, steps=s.steps, generator=gen)
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            rows.append(Measurement("latency", time.perf_counter() - start, "s/image", False, n=1, sampler=s.label,
                                    details={"batch_size": 1}))
            counter = FlopCounterMode(display=False)
            with counter, torch.inference_mode(), run_precision(ctx):
                ctx.model.sample(1, steps=s.steps, generator=torch.Generator().manual_seed(ctx.seed))
            rows.append(Measurement("flops_per_image", float(counter.get_total_flops()), "FLOP", False, n=1,
                                    sampler=s.label, details={"counter": "torch.utils.flop_counter"}))
        return rows


def run_precision(ctx: EvalContext):
    """The autocast block the run's sampler ran in (``genbench.runner.precision``): bf16, fp16 or none."""
    from genbench.runner.precision import autocast

    return autocast(getattr(getattr(ctx.model, "config", None), "precision", "fp32"), ctx.device)


class TrainingCost(Metric):
    """Training wall time, steps and parameter count."""

    name = "training"
    needs = "model"  # counts the model's parameters
    description = "training wall-clock seconds, optimisation steps, parameters"
    display = {
        "train_seconds": MetricDisplay("train s", "cost", direction="lower", per_model=True),
        "train_steps": MetricDisplay("train steps", "cost", per_model=True),
        "parameters": MetricDisplay("parameters", "cost", per_model=True),
    }

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        return [
            Measurement("train_seconds", ctx.train_seconds, "s", False, details={"device": str(ctx.device)}),
            Measurement("train_steps", float(ctx.train_steps), "steps", None),
            Measurement("parameters", float(ctx.model.count_parameters()), "parameters", None),
        ]
