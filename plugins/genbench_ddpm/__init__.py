"""genbench built-in plugin: DDPM (Ho et al. 2020), with DDIM sampling (Song et al. 2021).

The schedule, samplers, U-Net, training loss and bound live in ``genbench.diffusion`` (shared with latent
diffusion); the EMA, learning-rate rule and content-seeded evaluation generator in ``genbench.nn``.
  model      the GenerativeModel: training step, sampling, likelihood, presets
"""
from __future__ import annotations

from genbench import hookimpl

from .model import DDPM, DDPMConfig

__all__ = ["DDPM", "DDPMConfig"]


@hookimpl
def genbench_models() -> list[type]:
    return [DDPM]
