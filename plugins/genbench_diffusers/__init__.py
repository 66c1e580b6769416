"""genbench plugin: diffusers' UNet2DModel and schedulers through the genbench interface (``pip install
genbench[diffusers]``).  Model ``diffusers`` trains a UNet2DModel with L_simple (Ho et al. 2020, Algorithm 1)
and samples it with any diffusers scheduler (DDPM, DDIM, DPM-Solver++, UniPC, Euler, ...), or loads a local
pipeline / UNet2DModel folder (``--set pretrained=DIR``) for evaluation-only runs (``--steps 0``).

  model        the GenerativeModel: config, presets, training step, sampling, NFE; why no likelihood
  schedulers   scheduler names -> diffusers classes, the pipeline loop, network evaluations per setting
  network      the UNet2DModel built for a data spec, its canvas (padding) and the checks of a loaded one
  pretrained   reading, checking and fingerprinting a local diffusers folder

diffusers is imported only when the model is configured, so ``genbench list`` works without it and a run
without it is a one-line error that says how to install it.
"""
from __future__ import annotations

from genbench import hookimpl

from .model import DiffusersConfig, DiffusersModel

__all__ = ["DiffusersConfig", "DiffusersModel"]


@hookimpl
def genbench_models() -> list[type]:
    return [DiffusersModel]
