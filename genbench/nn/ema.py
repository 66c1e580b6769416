"""Exponential moving average of a network's weights, the one implementation every family uses.

theta_avg <- beta_n theta_avg + (1 - beta_n) theta after the n-th update (n = 0, 1, ...).  Ho et al. 2020
(appendix B) sample DDPMs with it (decay 0.9999); BigGAN (Brock et al. 2019) samples its generator with it
(Yazici et al. 2019); PixelCNN++ (Salimans et al. 2017, section 3) evaluates a Polyak average.  With the
warm-up beta_n = min(beta, (1 + n) / (10 + n)) (the schedule of TensorFlow's ExponentialMovingAverage with
``num_updates``) a short run does not sample from an average dominated by the random initialisation.

The averaged copy lives in ``GenerativeModel.averaged`` (checkpointed, not counted, always in eval mode).
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(updates: int, base: float, warmup: bool = True) -> float:
    """The decay used at update number ``updates`` (0-based): ``base``, or with warm-up
    min(base, (1 + n) / (10 + n)) so the average forgets its random initialisation early."""
    return min(base, (1.0 + updates) / (10.0 + updates)) if warmup else base


def averaged_copy(net: nn.Module) -> nn.Module:
    """A frozen deep copy of ``net`` in eval mode, to hold the averaged weights."""
    avg = copy.deepcopy(net)
    avg.requires_grad_(False)
    avg.train(False)
    return avg


@torch.no_grad()
def ema_update(avg: nn.Module, net: nn.Module, decay: float) -> None:
    """avg <- decay * avg + (1 - decay) * net, for every parameter (``lerp_``); buffers are copied.

    Decay 0 copies the weights exactly (lerp with weight 1 returns its end point)."""
    avg_params, params = list(avg.parameters()), [p.detach() for p in net.parameters()]
    if len(avg_params) != len(params):
        raise ValueError(f"ema_update: the average has {len(avg_params)} parameters, the network {len(params)}")
    torch._foreach_lerp_(avg_params, params, 1.0 - decay)  # one fused call: no per-parameter Python loop
    for ba, b in zip(avg.buffers(), net.buffers(), strict=True):
        ba.copy_(b)
