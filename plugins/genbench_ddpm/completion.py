"""DDPM restoration: RePaint inpainting (Lugmayr et al. 2022), SDEdit denoising (Meng et al. 2022) and
colourisation by RePaint on the grey axis; the loops live in ``genbench.diffusion.repaint``.

RePaint runs Algorithm 2 of the model's own sampler (its variance, learned or fixed, and its x_0 clamp) for the
unknown part with the known part re-noised from the data at every step, and the paper's resampling schedule
(r = ``RESAMPLINGS`` = 10, j = ``JUMP_LENGTH`` = 10): about r x T network evaluations per image.
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.diffusion.repaint import repaint_nfe, repaint_sample, sdedit_denoise, sdedit_start

RESAMPLINGS = 10
JUMP_LENGTH = 10


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    """Draws of p_theta(x | known sub-pixels of ``x``) in [0, 1]; known sub-pixels come back exactly."""
    x0 = x.to(model.device) * 2 - 1
    mask = known.to(torch.bool).expand_as(x0).to(model.device)
    out, _ = repaint_sample(model.eps_var_fn if hasattr(model, "eps_var_fn") else model.eps_fn, model.schedule, x0,
                            mask, jump_length=JUMP_LENGTH, resamplings=RESAMPLINGS, generator=generator,
                            variance=model.config.variance, clip_x0=1.0 if model.config.clip_denoised else None)
    return ((out + 1) / 2).clamp(0, 1)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return repaint_nfe(model.schedule.T, JUMP_LENGTH, RESAMPLINGS)


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
    g = grey.to(model.device) * 2 - 1
    x0 = g.expand(len(g), model.data.channels, *g.shape[2:]).contiguous()

    def merge(known_part: Tensor, unknown: Tensor) -> Tensor:
        return known_part.mean(1, keepdim=True) + unknown - unknown.mean(1, keepdim=True)

    out, _ = repaint_sample(model.eps_var_fn if hasattr(model, "eps_var_fn") else model.eps_fn, model.schedule, x0,
                            merge=merge, jump_length=JUMP_LENGTH, resamplings=RESAMPLINGS, generator=generator,
                            variance=model.config.variance, clip_x0=1.0 if model.config.clip_denoised else None)
    return ((out + 1) / 2).clamp(0, 1)


def colourise_nfe(model) -> int:
    """Colourisation is RePaint with the grey axis known: the same network evaluations as a completion."""
    return completion_nfe(model)
