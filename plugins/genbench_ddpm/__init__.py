"""genbench built-in plugin: DDPM (Ho et al. 2020), with DDIM sampling (Song et al. 2021).

Modules, each with one job, importable by other plugins (latent diffusion reuses them):
  schedule   beta schedules and the closed-form maths: q_sample, posterior, reverse/DDIM steps, bound terms
  samplers   Algorithm 2 and DDIM loops over any epsilon-predicting callable and any shape
  vlb        the variational bound (eq. 5) over any epsilon-predicting callable: every term, or stratified in t
  unet       the noise-prediction U-Net
  ema        exponential moving average of weights
  model      the GenerativeModel: training step, sampling, likelihood, presets
"""
from __future__ import annotations

from genbench import hookimpl

from .model import DDPM, DDPMConfig
from .samplers import ancestral_sample, ddim_sample, ddim_timesteps
from .schedule import Schedule
from .unet import UNet, UNetConfig

__all__ = ["DDPM", "DDPMConfig", "Schedule", "UNet", "UNetConfig", "ancestral_sample", "ddim_sample", "ddim_timesteps"]


@hookimpl
def genbench_models() -> list[type]:
    return [DDPM]
