"""genbench built-in plugin: latent diffusion (Rombach et al. 2022) with an LSGM-style bound (Vahdat et al. 2021).

Modules, each with one job; the schedule, U-Net, samplers and EMA are imported from ``genbench_ddpm``:
  (decoder)     the discrete likelihood over K levels comes from genbench_vae.likelihoods (shared, not copied)
  autoencoder   the KL-f autoencoder: encoder -> Gaussian posterior, decoder -> likelihood parameters
  latent_vlb    the diffusion bound on a continuous latent (Gaussian L_0)
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
