"""The last term of the diffusion bound, L_0 = -log p_theta(x_0 | x_1), for pixels and for latents.

An ``L0Fn(x0, mean, var)`` returns L_0 per element (nats, in x0's dtype) for the reverse step's Gaussian
N(mean, var) at the first step; ``vlb`` takes one as an argument, so the same bound estimator serves:

  pixels   ``discretised_gaussian_nll(levels)``: the discretised Gaussian decoder of Ho et al. 2020 eq. 13,
           a probability mass over the K levels (the bound is on -log P(x) of discrete images);
  latents  ``gaussian_nll``: a Gaussian density (the bound is on -log p(u_0) of continuous latents, as in
           latent diffusion with an LSGM-style bound, Vahdat et al. 2021).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

L0Fn = Callable[[Tensor, Tensor, Tensor], Tensor]


def _log_diff_ndtr(a: Tensor, b: Tensor) -> Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails (uses the symmetry Phi(-x) = 1 - Phi(x))."""
    flip = a > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    lhi, llo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return lhi + torch.log(-torch.expm1(llo - lhi))


def discretised_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """log p(x_0 | x_1) per sub-pixel for data on the K-level grid of [-1, 1] (Ho et al. eq. 13).

    Each level owns the interval [x - 1/(K-1), x + 1/(K-1)]; the lowest level's interval extends to
    -inf and the highest's to +inf, so the K probabilities sum to one.  Computed in float64 with
    log-space normal CDFs; where even that underflows, the bin's midpoint density times its width.
    """
    x, mean, log_scale = x.double(), mean.double(), log_scale.double().expand_as(mean)
    half = 1.0 / (levels - 1)
    inv = torch.exp(-log_scale)
    lo = (x - half - mean) * inv
    hi = (x + half - mean) * inv
    lo = torch.where(x <= -1 + 1e-6, torch.full_like(lo, -math.inf), lo)
    hi = torch.where(x >= 1 - 1e-6, torch.full_like(hi, math.inf), hi)
    logp = _log_diff_ndtr(lo, hi)
    centre = (x - mean) * inv
    approx = -0.5 * centre**2 - 0.5 * math.log(2 * math.pi) - log_scale + math.log(2 * half)
    return torch.where(torch.isfinite(logp), logp, approx)


def discretised_gaussian_nll(levels: int, min_var: float | None = None) -> L0Fn:
    """L_0 of pixels on K = ``levels`` levels: -log of the discretised Gaussian mass (Ho et al. eq. 13).

    ``min_var`` floors the decoder's variance (the DDPM passes beta_1, the variance of the noise in x_1): a
    decoder much narrower than that noise is overconfident, and where x_1's noise crosses a level boundary its
    mass on the true level underflows (thousands of nats for one image on K = 4 data).  At beta_1 = (a third of
    half a level)^2 the floor costs at most -log(1 - 2 Phi(-3)) = 0.0027 nats per sub-pixel for an exact mean.
    """

    def l0(x0: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        if min_var is not None:
            var = var.clamp(min=min_var)
        return -discretised_gaussian_log_likelihood(x0, mean, 0.5 * var.log(), levels).to(x0.dtype)

    return l0


def gaussian_nll(x0: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """L_0 of continuous latents: -log N(x0; mean, var) = (log(2 pi) + log var + (x0 - mean)^2 / var) / 2."""
    return 0.5 * (math.log(2 * math.pi) + var.log() + (x0 - mean) ** 2 / var)
