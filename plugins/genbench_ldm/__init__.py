"""genbench built-in plugin: latent diffusion (Rombach et al. 2022) with an LSGM-style bound (Vahdat et al. 2021).

The schedule, U-Net, samplers, training loss and the diffusion bound (with a Gaussian L_0 on continuous latents)
come from ``genbench.diffusion``; the EMA, learning-rate rule, discrete decoder likelihoods and content-seeded
evaluation generator from ``genbench.nn``.  Modules, each with one job:
  autoencoder   the KL-f autoencoder: encoder -> Gaussian posterior, decoder -> likelihood parameters
  bound         reconstruction + negative entropy + latent cross-entropy (with the scale's change of variables)
  model         the GenerativeModel: two-stage training, sampling, likelihood, presets
"""
from __future__ import annotations

from genbench import hookimpl

from .model import LatentDiffusion, LDMConfig

__all__ = ["LatentDiffusion", "LDMConfig"]


@hookimpl
def genbench_models() -> list[type]:
    return [LatentDiffusion]
