"""The learning-rate rule of the diffusion families: linear warm-up, then constant or cosine decay to 10%.

Warm-up as in Ho et al. 2020 (appendix B, 5000 steps); the cosine decay is that of Loshchilov & Hutter 2017
(SGDR eq. 5 without restarts) with eta_min = 0.1 eta_max.
"""
from __future__ import annotations

import math


def warmup_cosine_lr(base: float, step: int, warmup_steps: int, total_steps: int | None = None) -> float:
    """The rate at ``step`` (0-based): base * min(1, (step + 1) / warmup_steps) during the warm-up; after it
    constant, or, with ``total_steps`` (the schedule's length including the warm-up), multiplied by
    0.1 + 0.9 * (1 + cos(pi * f)) / 2, f = (step - warmup) / (total - warmup) capped at 1."""
    lr = base * min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else base
    if total_steps is not None and step >= warmup_steps:
        frac = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
    return lr
