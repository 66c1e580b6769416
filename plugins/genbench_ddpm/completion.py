"""DDPM restoration: RePaint inpainting (Lugmayr et al. 2022), SDEdit denoising (Meng et al. 2022) and
colourisation by RePaint on the grey axis; the loops live in ``genbench.diffusion.repaint``.

RePaint runs Algorithm 2 of the model's own sampler (its variance, learned or fixed, and its x_0 clamp) for the
unknown part with the known part re-noised from the data at every step, and the paper's resampling schedule
(r = ``RESAMPLINGS`` = 10, j = ``JUMP_LENGTH`` = 10 by default; ``--task-set resamplings=R --task-set
jump_length=J`` change them, ``genbench.tasks.options``): about r x T network evaluations per image.
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.diffusion.repaint import grey_merge, repaint_nfe, repaint_sample, sdedit_denoise, sdedit_start
from genbench.tasks.options import REPAINT_OPTIONS, repaint_details, repaint_options

RESAMPLINGS = 10
JUMP_LENGTH = 10
TASK_OPTIONS = REPAINT_OPTIONS


def repaint_settings(model) -> tuple[int, int]:
    """(r, j): the ``--task-set`` values the model was given, else ``RESAMPLINGS`` and ``JUMP_LENGTH``."""
    return repaint_options(model, RESAMPLINGS, JUMP_LENGTH)


def details(model, capability: str, known_mask: Tensor | None = None) -> dict[str, object]:
    """What the task rows record: the method, and RePaint's r and j for completion and colourisation."""
    return repaint_details(capability, repaint_settings(model), "RePaint", "SDEdit")


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    """Draws of p_theta(x | known sub-pixels of ``x``) in [0, 1]; known sub-pixels come back exactly."""
    r, j = repaint_settings(model)
    x0 = x.to(model.device) * 2 - 1
    mask = known.to(torch.bool).expand_as(x0).to(model.device)
    out, _ = repaint_sample(model.eps_var_fn if hasattr(model, "eps_var_fn") else model.eps_fn, model.schedule, x0,
                            mask, jump_length=j, resamplings=r, generator=generator,
                            variance=model.config.variance, clip_x0=1.0 if model.config.clip_denoised else None)
    return ((out + 1) / 2).clamp(0, 1)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    r, j = repaint_settings(model)
    return repaint_nfe(model.schedule.T, j, r)


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    """SDEdit from y = x + sigma n ([0, 1] units, so 2 sigma in the model's [-1, 1] space)."""
    out, _ = sdedit_denoise(model.eps_var_fn if hasattr(model, "eps_var_fn") else model.eps_fn, model.schedule,
                            y.to(model.device) * 2 - 1, 2 * sigma, generator=generator,
                            variance=model.config.variance, clip_x0=1.0 if model.config.clip_denoised else None)
    return ((out + 1) / 2).clamp(0, 1)


def denoise_nfe(model, sigma: float) -> int:
    return sdedit_start(model.schedule, 2 * sigma) + 1


def colourise(model, grey: Tensor, generator: torch.Generator | None) -> Tensor:
    """RGB draws whose channel mean is ``grey`` (n, 1, H, W): RePaint with the grey-axis projection as the
    known part (P a = mean_c(a) broadcast over channels; the forward process is isotropic, so replacing the
    grey component of x_t by a draw of q on the grey data is the same replacement in a rotated basis)."""
    r, j = repaint_settings(model)
    g = grey.to(model.device) * 2 - 1
    x0 = g.expand(len(g), model.data.channels, *g.shape[2:]).contiguous()

    out, _ = repaint_sample(model.eps_var_fn if hasattr(model, "eps_var_fn") else model.eps_fn, model.schedule, x0,
                            merge=grey_merge, jump_length=j, resamplings=r, generator=generator,
                            variance=model.config.variance, clip_x0=1.0 if model.config.clip_denoised else None)
    return ((out + 1) / 2).clamp(0, 1)


def colourise_nfe(model) -> int:
    """Colourisation is RePaint with the grey axis known: the same network evaluations as a completion."""
    return completion_nfe(model)
