"""Exponential moving average of generator weights (Yazici et al. 2019; used by BigGAN, Brock et al. 2019).

theta_ema <- beta_t theta_ema + (1 - beta_t) theta after every generator step, with
the warm-up beta_t = min(beta, (1 + t) / (10 + t)) (TensorFlow's
ExponentialMovingAverage with ``num_updates``), so that a short run does not sample
from an average dominated by the random initialisation.  Buffers (BatchNorm
running statistics) are not averaged but re-estimated for the averaged weights
(BigGAN's "standing statistics") with :func:`recalibrate_batchnorm` before sampling.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def ema_decay(step: int, decay: float) -> float:
    """beta_t = min(decay, (1 + t) / (10 + t)) for the t-th update (t = 0, 1, ...)."""
    return min(decay, (1.0 + step) / (10.0 + step))


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` in eval mode, to hold the averaged weights."""
    ema = copy.deepcopy(module)
    ema.train(False)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """theta_ema <- decay * theta_ema + (1 - decay) * theta for every parameter; buffers copied."""
    for p_ema, p in zip(ema.parameters(), module.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), module.buffers(), strict=True):
        b_ema.copy_(b)


def recalibrate_batchnorm(module: nn.Module, latents: list[Tensor]) -> None:
    """Re-estimate BatchNorm running mean/var of ``module`` as plain averages over ``latents`` batches.

    BigGAN (Brock et al. 2019, Appendix C.1, "standing statistics"): the running
    statistics of the raw generator belong to its weights, not to the averaged ones,
    so they are recomputed by forward passes of the EMA generator in training mode
    with momentum=None (cumulative average).  The module is left in eval mode.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    module.train(True)
    with torch.no_grad():
        for z in latents:
            module(z)
    module.train(False)
    for m, mom in zip(norms, saved):
        m.momentum = mom
