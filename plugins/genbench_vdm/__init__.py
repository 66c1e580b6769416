"""genbench built-in plugin: the variational diffusion model (Kingma et al. 2021, NeurIPS, "Variational Diffusion
Models"): continuous-time diffusion with a learned monotone noise schedule, a discrete decoder at gamma_min, the
exact prior term and the continuous-time loss with low-discrepancy t; ancestral sampling with any number of steps.

The continuous-time maths (``genbench.diffusion.continuous``), the learned schedule
(``genbench.diffusion.learned_schedule``) and the U-Net live in ``genbench.diffusion``; the EMA, learning-rate
rule and content-seeded evaluation generator in ``genbench.nn``.
  network    the noise model eps_hat(z; gamma): the U-Net with Fourier features, conditioned on the log-SNR
  model      the GenerativeModel: training step (the bound, with the schedule's variance gradient), sampling,
             likelihood, presets
"""
from __future__ import annotations

from genbench import hookimpl

from .model import VDM, VDMConfig

__all__ = ["VDM", "VDMConfig"]


@hookimpl
def genbench_models() -> list[type]:
    return [VDM]
