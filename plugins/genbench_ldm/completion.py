"""Latent-diffusion restoration: RePaint (Lugmayr et al. 2022) in the autoencoder's latent space, then a
pixel-space consistency step; SDEdit (Meng et al. 2022) for denoising, also in latent space.

Completion: u = s E(x_obs) (the encoder's mean of the observed image with unknown pixels shown as 0.5, scaled
as in training); a latent position is known when every pixel of its f x f footprint is known (the mask
downsampled by min-pooling); RePaint runs with the model's own reverse process (variance, latent clamp) and the
paper's r = j = 10; the decoder's image then has the known pixels put back exactly from the data (the
consistency step: the decoder alone does not reproduce them).  The seam between the two is what the "known"
PSNR cannot see and the class agreement and FID can.
Denoising: encode the noisy image; the latent noise level matching pixel noise sigma is not known in closed form
(the encoder is non-linear), so SDEdit starts where sqrt(1 - abar_t)/sqrt(abar_t) reaches s sigma_u, with sigma_u
the std of s E(x + sigma n) - s E(x) measured on the batch itself with a second noise draw (stated estimate).
Colourisation is not offered: RePaint's known-part replacement needs the constraint to be an orthogonal
projection of the diffused variable, and the grey (channel-mean) image is a linear function of the pixels, not
of the latent (the decoder is non-linear), so no latent-space replacement imposes it; the pixel-space
consistency step alone would be a projection of a sample that ignored the grey image, not a draw of p(x | grey).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench.diffusion.repaint import repaint_nfe, repaint_sample, sdedit_denoise
from genbench.tasks.options import REPAINT_OPTIONS, repaint_details, repaint_options

RESAMPLINGS = 10
JUMP_LENGTH = 10
TASK_OPTIONS = {k: dataclasses.replace(v, capabilities=frozenset({"complete"}))  # no colourisation here
                for k, v in REPAINT_OPTIONS.items()}


def repaint_settings(model) -> tuple[int, int]:
    """(r, j): the ``--task-set`` values the model was given, else ``RESAMPLINGS`` and ``JUMP_LENGTH``."""
    return repaint_options(model, RESAMPLINGS, JUMP_LENGTH)


def details(model, capability: str, known_mask: Tensor | None = None) -> dict[str, object]:
    """What the task rows record: the method, and RePaint's r and j for completion and colourisation."""
    return repaint_details(capability, repaint_settings(model), "RePaint (latent) + pixel consistency", "SDEdit (latent)")


def _encode(model, x: Tensor) -> Tensor:
    mean, _ = model.encode(x.to(model.device))
    return (model.scale or 1.0) * mean


def latent_known(model, known: Tensor) -> Tensor:
    """The pixel mask (n, 1, H, W) min-pooled to the latent grid: known only if its whole footprint is."""
    f = model.ae_cfg.f
    lh, lw = model.latent_shape[1:]
    k = known.to(torch.float32)
    pad_h, pad_w = lh * f - k.shape[-2], lw * f - k.shape[-1]
    if pad_h or pad_w:  # pixels beyond the image count as unknown-free (known)
        k = F.pad(k, (0, pad_w, 0, pad_h), value=1.0)
    return (-F.max_pool2d(-k, f) > 0.5).expand(len(known), model.latent_shape[0], lh, lw)


@torch.no_grad()
def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    c = model.config
    known = known.to(torch.bool)
    x_obs = torch.where(known.expand_as(x), x, torch.full_like(x, 0.5))
    u_obs = _encode(model, x_obs)
    mask = latent_known(model, known).to(model.device)
    clip = model.latent_bound if c.clip_latents else None
    r, j = repaint_settings(model)
    u, _ = repaint_sample(model.eps_var_fn, model.schedule, u_obs, mask, jump_length=j,
                          resamplings=r, generator=generator, variance=c.variance, clip_x0=clip)
    image = model.decode(u, generator).clamp(0, 1)
    return torch.where(known.expand_as(x).to(model.device), x.to(model.device), image)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    r, j = repaint_settings(model)
    return repaint_nfe(model.config.T, j, r) + 1


def _latent_sigma(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> float:
    extra = torch.randn(y.shape, generator=generator).to(model.device) * sigma
    return float((_encode(model, y.to(model.device) + extra) - _encode(model, y)).std())


@torch.no_grad()
def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    c = model.config
    s_u = _latent_sigma(model, y, sigma, generator)
    clip = model.latent_bound if c.clip_latents else None
    u, _ = sdedit_denoise(model.eps_var_fn, model.schedule, _encode(model, y), s_u, generator=generator,
                          variance=c.variance, clip_x0=clip)
    return model.decode(u, generator).clamp(0, 1)
