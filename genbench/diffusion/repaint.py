"""Conditional sampling with an unconditional diffusion model: RePaint and SDEdit.

RePaint (Lugmayr et al. 2022, Algorithm 1).  Known sub-pixels of ``x0`` are kept by replacing, after every
reverse step t -> t-1, the known part of x_{t-1} with a fresh draw of q(x_{t-1} | x_0) (Ho et al. eq. 4) of the
data, while the unknown part comes from p_theta(x_{t-1} | x_t) (Algorithm 2):

    x_{t-1} = m * (sqrt(abar_{t-1}) x_0 + sqrt(1 - abar_{t-1}) eps) + (1 - m) * (mu_theta(x_t, t) + sigma_t z).

The two parts are harmonised by resampling: after every ``jump_length`` reverse steps the chain jumps back
``jump_length`` steps with the forward process q(x_t | x_{t-1}) (Ho et al. eq. 2), ``resamplings - 1`` times
per position (the paper's r and j; its time schedule is ``repaint_schedule``).  The known part at t = 0 is x_0
itself, so the known region comes back exactly.  ``merge`` generalises the mask to any orthogonal projection
(P a + (I - P) b): the forward process is isotropic, so the same replacement holds in a rotated basis, e.g. the
grey axis of RGB for colourisation.

SDEdit (Meng et al. 2022) denoises y = x + s n, n ~ N(0, I): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, so
sqrt(abar_t) y is a draw of q(x_t | x_0) at the t where (1 - abar_t) / abar_t = s^2.  We take the first index
whose level is at least s and add the missing variance 1 - abar_t - abar_t s^2 (so the start is an exact draw
of q(x_t | x_0)), then run Algorithm 2 from there.

Index convention as in ``schedule``: index i in 0..T-1 is the paper's t = i + 1; the state "at index i" is
x_{i+1} and index -1 is x_0.  Randomness is drawn on the CPU from ``generator`` (as ``samplers`` does).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .samplers import EpsFn, _randn
from .schedule import Schedule, q_sample, q_step, reverse_step

__all__ = ["Merge", "grey_merge", "mask_merge", "repaint_nfe", "repaint_sample", "repaint_schedule", "sdedit_denoise", "sdedit_start"]

Merge = Callable[[Tensor, Tensor], Tensor]


def repaint_schedule(T: int, jump_length: int = 10, resamplings: int = 10) -> list[int]:
    """The time indices RePaint visits, from T-1 down to -1 (x_0), with jumps back (Lugmayr et al.'s
    ``get_schedule_jump``): at every multiple of ``jump_length`` below T - jump_length the chain goes back
    up ``jump_length`` indices, ``resamplings - 1`` times.  (r, j) = (1, any) is plain replacement."""
    if jump_length < 1 or resamplings < 1:
        raise ValueError(f"RePaint needs jump_length >= 1 and resamplings >= 1, got {jump_length}, {resamplings}")
    jumps = {j: resamplings - 1 for j in range(0, max(T - jump_length, 0), jump_length)}
    ts: list[int] = [T - 1]
    t = T - 1
    while t >= 0:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0 and t >= 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                ts.append(t)
    return ts


def repaint_nfe(T: int, jump_length: int = 10, resamplings: int = 10) -> int:
    """Network evaluations per image of ``repaint_sample``: the number of reverse steps in the schedule."""
    ts = repaint_schedule(T, jump_length, resamplings)
    return sum(1 for a, b in zip(ts[:-1], ts[1:]) if b < a)


def _reverse(eps_fn: EpsFn, schedule: Schedule, x: Tensor, t: Tensor, z: Tensor | None, variance: str,
             clip_x0: float | None) -> Tensor:
    """One step of Algorithm 2; ``eps_fn`` may return (eps, log Sigma) for a learned variance (as in ``samplers``)."""
    out = eps_fn(x, t)
    if isinstance(out, tuple):
        eps, log_var = out
        return reverse_step(schedule, x, t, eps, z, variance=variance, clip_x0=clip_x0, log_var=log_var)
    return reverse_step(schedule, x, t, out, z, variance=variance, clip_x0=clip_x0)


def mask_merge(known: Tensor) -> Merge:
    """merge(a, b) = m a + (1 - m) b for a bool mask ``m`` (True = known), broadcast against the images."""
    def merge(a: Tensor, b: Tensor) -> Tensor:
        m = known.to(a.device)
        return torch.where(m, a, b)
    return merge


def grey_merge(known_part: Tensor, unknown: Tensor) -> Tensor:
    """P a + (I - P) b with P the channel mean broadcast over the channels (dim 1): the orthogonal projection on
    the grey axis (1, ..., 1)/sqrt(C) of each pixel, so RePaint with it keeps the channel mean of ``known_part``
    (colourisation, ``genbench.tasks.builtin.Colourise``).  ``known_part`` may have one channel."""
    return known_part.mean(1, keepdim=True) + unknown - unknown.mean(1, keepdim=True)


@torch.no_grad()
def repaint_sample(
    eps_fn: EpsFn, schedule: Schedule, x0: Tensor, known: Tensor | None = None, *, merge: Merge | None = None,
    jump_length: int = 10, resamplings: int = 10, generator: torch.Generator | None = None,
    variance: str = "beta", clip_x0: float | None = 1.0,
) -> tuple[Tensor, int]:
    """RePaint (Algorithm 1 with the jump schedule): draws of p_theta(x_0 | known part of ``x0``).

    ``x0`` (n, ...) is the data in the diffusion's space (its unknown part is ignored); ``known`` a bool mask
    broadcastable to it, or ``merge(known_part, unknown_part)`` a projection.  Returns (x_0, nfe per image)."""
    if merge is None:
        if known is None:
            raise ValueError("repaint_sample needs a known mask or a merge")
        merge = mask_merge(known)
    shape, device, dtype = tuple(x0.shape), x0.device, x0.dtype
    n = shape[0]
    ts = repaint_schedule(schedule.T, jump_length, resamplings)
    x = _randn(shape, generator, device, dtype)
    nfe = 0
    for t_last, t_cur in zip(ts[:-1], ts[1:]):
        if t_cur < t_last:  # reverse step x_{t_last+1} -> x_{t_last}, unknown part from p_theta
            t = torch.full((n,), t_last, dtype=torch.long, device=device)
            nfe += 1
            z = _randn(shape, generator, device, dtype) if t_last > 0 else None
            unknown = _reverse(eps_fn, schedule, x, t, z, variance, clip_x0)
            if t_cur >= 0:  # known part: a draw of q(x_{t_cur+1} | x_0)
                tk = torch.full((n,), t_cur, dtype=torch.long, device=device)
                known_part = q_sample(schedule, x0, tk, _randn(shape, generator, device, dtype))
            else:
                known_part = x0
            x = merge(known_part, unknown)
        else:  # jump back: x_{t_cur+1} ~ q(x_{t_cur+1} | x_{t_cur}) = N(sqrt(alpha) x, beta I)
            t = torch.full((n,), t_cur, dtype=torch.long, device=device)
            x = q_step(schedule, x, t, _randn(shape, generator, device, dtype))
    return x, nfe


def sdedit_start(schedule: Schedule, sigma: float) -> int:
    """The first time index whose noise-to-signal ratio sqrt((1 - abar) / abar) reaches ``sigma`` (T-1 if none)."""
    ab = schedule.alpha_bar
    ratio = ((1 - ab) / ab).sqrt()
    reached = torch.nonzero(ratio >= sigma)
    return int(reached[0]) if len(reached) else schedule.T - 1


@torch.no_grad()
def sdedit_denoise(
    eps_fn: EpsFn, schedule: Schedule, y: Tensor, sigma: float, *, generator: torch.Generator | None = None,
    variance: str = "beta", clip_x0: float | None = 1.0,
) -> tuple[Tensor, int]:
    """SDEdit: ``y`` = x_0 + sigma n in the diffusion's space -> a draw near p(x_0 | y) by Algorithm 2 started at
    the matching level.  Returns (x_0, nfe per image) with nfe = start index + 1."""
    shape, device, dtype = tuple(y.shape), y.device, y.dtype
    n = shape[0]
    i = sdedit_start(schedule, sigma)
    ab = float(schedule.alpha_bar[i])
    extra = max(1.0 - ab - ab * sigma * sigma, 0.0)
    x = math.sqrt(ab) * y + math.sqrt(extra) * _randn(shape, generator, device, dtype)
    for k in reversed(range(i + 1)):
        t = torch.full((n,), k, dtype=torch.long, device=device)
        z = _randn(shape, generator, device, dtype) if k > 0 else None
        x = _reverse(eps_fn, schedule, x, t, z, variance, clip_x0)
    return x, i + 1
