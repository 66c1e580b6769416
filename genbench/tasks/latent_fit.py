"""Restoration by latent optimisation, shared by the families with a decoder (VAE, GAN).

MAP estimate of the latent given the known pixels (Yeh et al. 2017 for GAN inpainting; the same objective with
the VAE's prior):

    z* = argmin_z  sum_{known d} (g(z)_d - y_d)^2 / (2 s^2)  -  log p(z),

g the decoder's mean image in [0, 1], s the observation noise std (``COMPLETION_NOISE`` = 0.1 for completion,
sigma itself for denoising), p(z) the model's prior (N(0, I) by default: 0.5 ||z||^2).  Adam with a fixed budget
(``STEPS`` = 200 iterations, learning rate ``LR`` = 0.05) from ``restarts`` starting points per image, keeping
the lowest objective; the restoration is g(z*) with the known sub-pixels put back exactly.  Different starting
points (drawn from the caller's generator) give different completions.

A family plugs in with a ``setup(model, target, known, generator) -> FitProblem`` (its decoder, its starting
points, its prior, its restarts) and thin ``complete`` / ``denoise`` / ``*_nfe`` wrappers around
:func:`complete_by_fit`, :func:`denoise_by_fit` and :func:`fit_nfe` in its plugin's completion module (the
VAE's and the GAN's do).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ["COMPLETION_NOISE", "LR", "STEPS", "FitProblem", "complete_by_fit", "denoise_by_fit", "fit_latents",
           "fit_nfe", "frozen", "restore_by_fit"]

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


@dataclass
class FitProblem:
    """One family's latent fit for a batch: ``decode`` z -> image in [0, 1], ``draw(n)`` n starting points (from
    the caller's generator), ``prior_nll`` -log p(z) per row up to a constant, ``restarts`` starts per image,
    ``freeze`` the networks to hold in eval mode without parameter gradients during the fit (:func:`frozen`)."""

    decode: Callable[[Tensor], Tensor]
    draw: Callable[[int], Tensor]
    prior_nll: Callable[[Tensor], Tensor] = standard_normal_nll
    restarts: int = 1
    freeze: tuple[torch.nn.Module, ...] = ()


#: (model, target on the model's device, known mask on the device, generator) -> FitProblem
Setup = Callable[[Any, Tensor, Tensor, torch.Generator], FitProblem]


@contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """``modules`` in eval mode with no parameter requiring grad (the fit differentiates z only); restored after."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    modes = [m.training for m in modules]
    for m in modules:
        m.train(False)
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        for m, mode in zip(modules, modes):
            m.train(mode)


def _fit(setup: Setup, model: Any, target: Tensor, known: Tensor, noise: float, generator: torch.Generator | None,
         keep_known: bool) -> Tensor:
    target = target.to(model.device)
    known = known.to(torch.bool).to(model.device)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    problem = setup(model, target, known, gen)
    with frozen(*problem.freeze):
        return restore_by_fit(problem.decode, problem.draw, target, known, noise, restarts=problem.restarts,
                              prior_nll=problem.prior_nll, keep_known=keep_known)


def complete_by_fit(setup: Setup, model: Any, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    """Completion: MAP z against the known sub-pixels of ``x`` with s = ``COMPLETION_NOISE``, known put back."""
    return _fit(setup, model, x, known, COMPLETION_NOISE, generator, keep_known=True)


def denoise_by_fit(setup: Setup, model: Any, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    """Denoising: MAP z against every sub-pixel of ``y`` = x + sigma n with s = sigma; nothing is put back."""
    known = torch.ones(len(y), 1, *y.shape[2:], dtype=torch.bool)
    return _fit(setup, model, y, known, sigma, generator, keep_known=False)


def fit_nfe(restarts: int = 1) -> int:
    """Decoder passes per image: one per Adam step (forward and backward counted as one) per start, + 1 decode."""
    return restarts * (STEPS + 1)
