"""Whether a cell's samples are drawn through a compiled network (the ``compile_sampler`` config field).

``compile_sampler``: "off" (the default: eager calls), "on" (compile whenever the family supports it, i.e. names
its sampling network in ``GenerativeModel.compiled_sampling_modules``; refused at planning otherwise) or "auto":
compile when the cell's sampler settings will put at least :data:`COMPILE_MIN_EVALUATIONS` images through the
network in all (``planned_evaluations``: images x NFE, summed over settings and sampling seeds), where the compile
pays for itself.  Counting images rather than calls because a call saves time in proportion to its batch.

Why 500,000 (``bench/results/perf.md``, 2026-12-03, 2 cores, an AMD EPYC with AVX512-BF16, the DDPM quick U-Net
on 8x8, cold compile cache): section "torch.compile", a call of batch 500 in bf16 109.2 -> 60.8 ms after a 27.2 s
compile, break-even after 563 calls (282k evaluations); section "Sampling", batch 100 in bf16, break-even after
2,531-3,662 calls (253k-366k evaluations), and in fp32 at batch 100 no gain at all.  Under "auto" the quick
presets' 50,000 (1,000 DDIM-50 images) stay eager; the standard digits DDPM's 1,070,000 (Algorithm 2 with 1,000
steps, DDIM-50 and DDIM-20 over 1,000 images) would compile (its preset keeps "off" so far, README "Speed"), and
the DDPM paper preset's millions do (it asks for "auto").  The compile
seconds are a row of their own (``sampler_compile_seconds``), left out of each setting's images/s, and the
images/s rows say whether the network was compiled (``details.compiled_sampler``).
"""
from __future__ import annotations

import math
from typing import Any

COMPILE_SAMPLER_CHOICES = ("off", "on", "auto")
#: "auto" compiles when a cell's sampler settings will put at least this many images through the network (above)
COMPILE_MIN_EVALUATIONS = 500_000


def check_compile_sampler(value: Any, model_cls: type) -> str:
    """The config value, validated at planning: one of COMPILE_SAMPLER_CHOICES, and "on" only for a family that
    names its sampling network (one-line ValueError otherwise, before any work)."""
    name = str(value).lower()
    if name not in COMPILE_SAMPLER_CHOICES:
        raise ValueError(f"compile_sampler must be one of {', '.join(COMPILE_SAMPLER_CHOICES)}, got {value!r}")
    if name == "on" and not getattr(model_cls, "compiled_sampling_modules", ()):
        raise ValueError(f"model {getattr(model_cls, 'name', model_cls)!r} cannot compile its sampler "
                         "(no compiled_sampling_modules); use --set compile_sampler=off or auto")
    return name


def planned_sampler_calls(model: Any, config: Any, sampling_seeds: int | None = None) -> int:
    """Network calls of drawing every sampler setting: per setting and sampling seed (``config.sampling_seeds``
    unless given), ceil(n_samples / batch) batches of ``model.nfe(steps)`` calls each."""
    batches = math.ceil(config.n_samples / max(1, config.sample_batch_size))
    seeds = getattr(config, "sampling_seeds", 1) if sampling_seeds is None else sampling_seeds
    return sum(seeds * batches * model.nfe(steps) for steps in config.sample_steps)


def planned_evaluations(model: Any, config: Any, sampling_seeds: int | None = None) -> int:
    """Images through the network when drawing every sampler setting: per setting and sampling seed,
    n_samples x ``model.nfe(steps)``."""
    seeds = getattr(config, "sampling_seeds", 1) if sampling_seeds is None else sampling_seeds
    return sum(seeds * config.n_samples * model.nfe(steps) for steps in config.sample_steps)


def compiles_sampler(model: Any, config: Any, sampling_seeds: int | None = None) -> bool:
    """Whether this draw of the cell's samples goes through the compiled network."""
    choice = str(getattr(config, "compile_sampler", "off")).lower()
    if choice == "off" or not getattr(model, "compiled_sampling_modules", ()):
        return False
    return choice == "on" or planned_evaluations(model, config, sampling_seeds) >= COMPILE_MIN_EVALUATIONS
