"""Exponential moving average of a network's weights (Ho et al. appendix B: decay 0.9999, used for sampling)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(base: float, updates: int, warmup: bool = True) -> float:
    """The decay used at update number ``updates`` (0-based): ``base``, or with warm-up
    min(base, (1 + n) / (10 + n)) so the average forgets its random initialisation early
    (the schedule of TensorFlow's ExponentialMovingAverage with num_updates)."""
    return min(base, (1.0 + updates) / (10.0 + updates)) if warmup else base


def ema_copy(net: nn.Module) -> nn.Module:
    """A frozen deep copy of ``net`` in eval mode, to hold the averaged weights."""
    ema = copy.deepcopy(net)
    ema.requires_grad_(False)
    ema.train(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, for every parameter; buffers are copied."""
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p.detach(), 1.0 - decay)
    for be, b in zip(ema.buffers(), net.buffers()):
        be.copy_(b)
