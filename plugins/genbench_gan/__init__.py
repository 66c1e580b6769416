"""genbench built-in plugin: gan — DCGAN (Radford et al. 2016) with a spectrally normalised
discriminator (Miyato et al. 2018), hinge or non-saturating loss and an EMA generator for sampling.

Modules: ``networks`` (G and D), ``losses`` (objectives), ``batchnorm`` (BatchNorm
re-estimation for the averaged generator; the average itself is ``genbench.nn.ema``),
``model`` (the training step, sampling, presets).
"""
from __future__ import annotations

from genbench import hookimpl
from genbench_gan.model import GAN, GANConfig

__all__ = ["GAN", "GANConfig", "genbench_models"]


@hookimpl
def genbench_models() -> list[type]:
    return [GAN]
