"""Restoration by latent optimisation, shared by the families with a decoder (VAE, GAN).

MAP estimate of the latent given the known pixels (Yeh et al. 2017 for GAN inpainting; the same objective with
the VAE's prior):

    z* = argmin_z  sum_{known d} (g(z)_d - y_d)^2 / (2 s^2)  -  log p(z),

g the decoder's mean image in [0, 1], s the observation noise std (``COMPLETION_NOISE`` = 0.1 for completion,
sigma itself for denoising), p(z) the model's prior (N(0, I) by default: 0.5 ||z||^2).  Adam with a fixed budget
(``STEPS`` = 200 iterations, learning rate ``LR`` = 0.05) from ``restarts`` starting points per image, keeping
the lowest objective; the restoration is g(z*) with the known sub-pixels put back exactly.  Different starting
points (drawn from the caller's generator) give different completions.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["COMPLETION_NOISE", "LR", "STEPS", "fit_latents", "restore_by_fit"]

COMPLETION_NOISE = 0.1
STEPS = 200
LR = 0.05


def standard_normal_nll(z: Tensor) -> Tensor:
    """-log N(z; 0, I) up to a constant, per row."""
    return 0.5 * z.pow(2).flatten(1).sum(1)


def fit_latents(decode: Callable[[Tensor], Tensor], z0: Tensor, target: Tensor, known: Tensor, noise: float, *,
                prior_nll: Callable[[Tensor], Tensor] = standard_normal_nll, steps: int = STEPS,
                lr: float = LR) -> tuple[Tensor, Tensor]:
    """Adam on the MAP objective above from ``z0`` (n, ...); returns (z*, objective per image)."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    weight = known.expand_as(target).to(target.dtype)
    with torch.enable_grad():
        for _ in range(steps):
            loss = ((decode(z) - target) ** 2 * weight).flatten(1).sum(1) / (2 * noise**2) + prior_nll(z)
            (z.grad,) = torch.autograd.grad(loss.sum(), z)  # only z: the model's parameters get no .grad
            opt.step()
        with torch.no_grad():
            final = ((decode(z) - target) ** 2 * weight).flatten(1).sum(1) / (2 * noise**2) + prior_nll(z)
    return z.detach(), final.detach()


def restore_by_fit(decode: Callable[[Tensor], Tensor], draw_z0: Callable[[int], Tensor], target: Tensor,
                   known: Tensor, noise: float, *, restarts: int = 1,
                   prior_nll: Callable[[Tensor], Tensor] = standard_normal_nll, steps: int | None = None,
                   keep_known: bool = True) -> Tensor:
    """The best of ``restarts`` fits per image (starting points ``draw_z0(n)``), decoded, known sub-pixels put
    back unless ``keep_known`` is False (denoising: every pixel is a noisy observation)."""
    steps = STEPS if steps is None else steps
    best_x, best_obj = None, None
    for _ in range(restarts):
        z, obj = fit_latents(decode, draw_z0(len(target)), target, known, noise, prior_nll=prior_nll, steps=steps)
        with torch.no_grad():
            x = decode(z)
        if best_x is None:
            best_x, best_obj = x, obj
        else:
            better = (obj < best_obj).view(-1, *([1] * (x.dim() - 1)))
            best_x, best_obj = torch.where(better, x, best_x), torch.minimum(obj, best_obj)
    assert best_x is not None
    if not keep_known:
        return best_x.clamp(0, 1)
    return torch.where(known.expand_as(target), target, best_x).clamp(0, 1)
