"""Continuous-time variance-preserving diffusion on a log-SNR schedule gamma(t), t in [0, 1] (Kingma et al.
2021, "Variational Diffusion Models"; equation numbers are those of the arXiv version). No networks here.

    q(z_t | x) = N(alpha_t x, sigma_t^2 I)                           (eq. 1)
    alpha_t^2 = sigmoid(-gamma(t)),  sigma_t^2 = sigmoid(gamma(t))    (eq. 4),   SNR(t) = exp(-gamma(t)) (eq. 5)

The negative bound on -log P(x) of discrete data x (eq. 11) has three terms, computed here per image:
    prior      KL(q(z_1 | x) || N(0, I)) at gamma_1 = gamma(1), closed form               (``prior_kl``)
    recon      E_{q(z_0|x)} [-log p(x | z_0)] at gamma_0 = gamma(0), with the factorised
               categorical decoder p(x_i | z_0,i) proportional to q(z_0,i | x_i) over the
               K levels (eq. 8); the expectation over z_0 is a 1-D integral per level,
               computed by quadrature (``decoder_nll_table``), so the term has no noise
    diffusion  L_inf = 1/2 E_{t ~ U(0,1), eps} [gamma'(t) ||eps - eps_hat(z_t; t)||^2]    (eq. 17)
               with low-discrepancy t_i = (u + i/k) mod 1 (Appendix I.1)  (``diffusion_loss``)

Sampling is ancestral on any grid of times: p(z_s | z_t) = q(z_s | z_t, x = x_hat(z_t; t)) (eq. 26-27),
written with gamma as eqs. 31-33 (``reverse_step``, ``ancestral_sample``).

Callables: ``eps_fn(z, gamma) -> eps_hat`` takes a batch z and one gamma per row (the noise model is
conditioned on the log-SNR, so a change of schedule does not change it, Sec. 5.1); ``gamma_fn(t) ->
(gamma, dgamma/dt)`` maps a float tensor of times to the schedule and its derivative.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

EpsFn = Callable[[Tensor, Tensor], Tensor]
GammaFn = Callable[[Tensor], tuple[Tensor, Tensor]]


def _rows(v: Tensor, like: Tensor) -> Tensor:
    """A per-row (B,) tensor or a scalar reshaped to broadcast against ``like`` (B, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1))) if v.dim() else v


# --------------------------------------------------------------------------- forward process
def alpha_sigma(gamma: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha, sigma) with alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma) (eq. 4)."""
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()


def q_sample(x: Tensor, gamma: Tensor, eps: Tensor) -> Tensor:
    """z = alpha x + sigma eps, a draw of q(z | x) (eq. 1) at one gamma per row (or one for all)."""
    alpha, sigma = alpha_sigma(_rows(gamma, x))
    return alpha * x + sigma * eps


def low_discrepancy_times(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32, u: Tensor | None = None,
) -> Tensor:
    """t_i = (u + i / n) mod 1, i = 0..n-1, u ~ U(0, 1) (Appendix I.1): every t marginally uniform, the n
    times evenly spread, so the estimate of an integral over t has far less variance than n iid draws.
    ``u`` may be given (shape () or (B, 1) for B independent sets of n times)."""
    if u is None:
        u = torch.rand((), generator=generator, dtype=torch.float64)
    t = torch.remainder(u.double() + torch.arange(n, dtype=torch.float64) / n, 1.0)
    return t.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------- the three terms of eq. 11
def prior_kl(x: Tensor, gamma_1: Tensor) -> Tensor:
    """KL(q(z_1 | x) || N(0, I)) per element, nats: 1/2 (alpha_1^2 x^2 + sigma_1^2 - log sigma_1^2 - 1)
    = 1/2 (alpha_1^2 (x^2 - 1) + softplus(-gamma_1)), the stable form (sigma^2 = 1 - alpha^2)."""
    g = _rows(gamma_1, x)
    return 0.5 * (torch.sigmoid(-g) * (x**2 - 1) + F.softplus(-g))


def level_values(levels: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
    """The K level values v_k = 2k/(K-1) - 1 in [-1, 1]."""
    return torch.linspace(-1.0, 1.0, levels, dtype=dtype, device=device)


def to_level_index(x: Tensor, levels: int) -> Tensor:
    """Values on the K-level grid of [-1, 1] -> their integer indices k (int64)."""
    return torch.round((x.clamp(-1, 1) + 1) * 0.5 * (levels - 1)).long()


def decoder_logits(z0: Tensor, gamma_0: Tensor, levels: int) -> Tensor:
    """(..., K) logits of p(x_i = v_k | z_0,i) proportional to q(z_0,i | x_i = v_k) (eq. 8):
    -1/2 exp(-gamma_0) (z_0 / alpha_0 - v_k)^2."""
    alpha_0, _ = alpha_sigma(gamma_0)
    v = level_values(levels, z0.dtype, z0.device)
    return -0.5 * torch.exp(-gamma_0) * (z0[..., None] / alpha_0 - v) ** 2


def decoder_mode(z0: Tensor, gamma_0: Tensor, levels: int) -> Tensor:
    """The most probable level value of p(x | z_0) per element: the level nearest z_0 / alpha_0 (the logits
    of eq. 8 are a quadratic in v_k with one curvature), in [-1, 1]."""
    alpha_0, _ = alpha_sigma(gamma_0)
    k = to_level_index(z0 / alpha_0, levels)
    return k.to(z0.dtype) * (2.0 / (levels - 1)) - 1.0


def decoder_nll_table(gamma_0: Tensor, levels: int, nodes: int = 401, width: float = 8.0) -> Tensor:
    """r_k = E_{eps ~ N(0,1)} [-log p(x_i = v_k | z_0,i = alpha_0 v_k + sigma_0 eps)] for every level k, (K,)
    float64, differentiable in ``gamma_0`` (a scalar).

    With z_0 / alpha_0 = v_k + e^{gamma_0/2} eps (sigma/alpha = e^{gamma/2}) the decoder's logit of level
    j = k + o is -1/2 (eps - o d)^2, d = (2 / (K - 1)) e^{-gamma_0/2} the level spacing in noise units.  The
    expectation is a trapezoid rule on ``nodes`` points of [-width, width] with normal weights renormalised
    to sum to 1 (the integrand is smooth; the mass outside is 1e-15).  Levels with |o d| > width + 24 are
    left out of the normaliser: their terms are below exp(-300) times the true level's, under float64's
    resolution, so the sum is exact; every interior level (all of its window inside the grid) has the same
    r_k.  Since the decoder factorises, E[-log p(x | z_0)] = sum_i r_{k_i}.
    """
    g = gamma_0.double().reshape(())
    d = (2.0 / (levels - 1)) * torch.exp(-0.5 * g)
    win = int(min(levels - 1, math.ceil((width + 24.0) / float(d.detach()))))
    e = torch.linspace(-width, width, nodes, dtype=torch.float64, device=g.device)
    w = torch.exp(-0.5 * e**2)
    w[0], w[-1] = 0.5 * w[0], 0.5 * w[-1]
    w = w / w.sum()
    offsets = torch.arange(-win, win + 1, device=g.device)
    logits = -0.5 * (e[:, None] - offsets.double() * d) ** 2  # (n, o)
    # one row per distinct window: the first and last ``win`` levels, and one for every interior level
    interior = levels > 2 * win
    ks = (torch.cat([torch.arange(win + 1), torch.arange(levels - win, levels)]) if interior
          else torch.arange(levels)).to(g.device)
    valid = ((ks[:, None] + offsets) >= 0) & ((ks[:, None] + offsets) < levels)  # (rows, o)
    masked = torch.where(valid[:, None, :], logits[None], torch.full_like(logits[None], -math.inf))
    logp = -0.5 * e**2 - torch.logsumexp(masked, dim=-1)  # (rows, n)
    rows = -(logp * w).sum(1)
    if not interior:
        return rows
    return torch.cat([rows[:win], rows[win].expand(levels - 2 * win), rows[win + 1 :]])


def reconstruction_nll(x: Tensor, gamma_0: Tensor, levels: int) -> Tensor:
    """E_{q(z_0|x)} [-log p(x | z_0)] per image (B,), float64: the decoder term of eq. 11 (no sampling)."""
    table = decoder_nll_table(gamma_0, levels)
    return table[to_level_index(x, levels).to(table.device)].flatten(1).sum(1)


def diffusion_loss(eps: Tensor, eps_hat: Tensor, dgamma: Tensor) -> Tensor:
    """One-sample estimate of L_inf per image (B,) (eq. 17): 1/2 gamma'(t) ||eps - eps_hat(z_t; t)||^2."""
    return 0.5 * dgamma * (eps - eps_hat).pow(2).flatten(1).sum(1)


# --------------------------------------------------------------------------- the bound
@torch.no_grad()
def continuous_bound(
    eps_fn: EpsFn, gamma_fn: GammaFn, x: Tensor, levels: int, draws: int, *,
    generator: torch.Generator | None = None, chunk: int = 1024,
) -> dict[str, Tensor]:
    """The three terms of eq. 11 per image, float64 on x's device: {"prior", "recon", "diffusion"}.

    ``x`` is on the K-level grid of [-1, 1].  Prior and reconstruction are exact; the diffusion term is the
    mean of ``draws`` one-sample estimates of eq. 17 at the low-discrepancy times t_j = (u + j/draws) mod 1
    with one u ~ U(0, 1) per image (Appendix I.1): unbiased, ``draws`` network evaluations per image.
    Randomness (u, then eps) comes from ``generator`` on the CPU.
    """
    if draws < 1:
        raise ValueError(f"the bound needs at least one t draw per image, got {draws}")
    B, dev = len(x), x.device
    ends, _ = gamma_fn(torch.tensor([0.0, 1.0], device=dev))
    gamma_0, gamma_1 = ends[0], ends[1]
    prior = prior_kl(x.double(), gamma_1.double()).flatten(1).sum(1)
    recon = reconstruction_nll(x, gamma_0, levels).to(dev)
    u = torch.rand(B, 1, generator=generator, dtype=torch.float64)
    t = low_discrepancy_times(draws, u=u, dtype=torch.float64).reshape(-1)  # (B * draws,), image-major
    eps_all = torch.randn((B * draws, *x.shape[1:]), generator=generator, dtype=x.dtype)
    rep = x.repeat_interleave(draws, dim=0)
    terms = []
    for i in range(0, len(rep), chunk):
        sl = slice(i, i + chunk)
        gamma, dgamma = gamma_fn(t[sl].to(device=dev, dtype=x.dtype))
        eps = eps_all[sl].to(dev)
        z = q_sample(rep[sl], gamma, eps)
        terms.append(diffusion_loss(eps.double(), eps_fn(z, gamma).double(), dgamma.double()))
    diffusion = torch.cat(terms).reshape(B, draws).mean(1)
    return {"prior": prior, "recon": recon, "diffusion": diffusion}


# --------------------------------------------------------------------------- sampling
def reverse_step(z_t: Tensor, eps_hat: Tensor, gamma_t: Tensor, gamma_s: Tensor, noise: Tensor | None) -> Tensor:
    """z_s ~ p(z_s | z_t), s < t (eqs. 31-33): with c = 1 - exp(gamma_s - gamma_t) = 1 - SNR(t)/SNR(s),
    z_s = alpha_s / alpha_t (z_t - c sigma_t eps_hat) + sqrt(c sigma_s^2) noise.  Scalars or per-row gammas."""
    g_t, g_s = _rows(gamma_t, z_t).double(), _rows(gamma_s, z_t).double()
    c = -torch.expm1(g_s - g_t)
    ratio = (torch.sigmoid(-g_s) / torch.sigmoid(-g_t)).sqrt()
    sigma_t = torch.sigmoid(g_t).sqrt()
    mean = ratio.to(z_t.dtype) * (z_t - (c * sigma_t).to(z_t.dtype) * eps_hat)
    if noise is None:
        return mean
    return mean + (c * torch.sigmoid(g_s)).sqrt().to(z_t.dtype) * noise


def ancestral_sample(
    eps_fn: EpsFn, gamma_fn: Callable[[Tensor], Tensor], shape: tuple[int, ...], steps: int, *,
    generator: torch.Generator | None = None, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """z_1 ~ N(0, I) (eq. 7), then ``steps`` ancestral steps t_i = i/steps -> s_i = (i-1)/steps (eq. 33); one
    network evaluation each.  Returns (z_0, gamma_0).  Noise is drawn on the CPU from ``generator``.
    ``gamma_fn(t) -> gamma`` is evaluated once on the whole grid."""
    if steps < 1:
        raise ValueError(f"ancestral sampling needs steps >= 1, got {steps}")
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    gammas = gamma_fn(grid.to(device=device, dtype=dtype)).double().cpu()
    n = shape[0]
    z = torch.randn(shape, generator=generator, dtype=dtype).to(device)
    for i in range(steps, 0, -1):
        g_t = torch.full((n,), float(gammas[i]), dtype=dtype, device=device)
        eps_hat = eps_fn(z, g_t)
        noise = torch.randn(shape, generator=generator, dtype=dtype).to(device)
        z = reverse_step(z, eps_hat, gammas[i].to(device), gammas[i - 1].to(device), noise)
    return z, gammas[0].to(device=device, dtype=dtype)


__all__ = [
    "EpsFn", "GammaFn", "alpha_sigma", "ancestral_sample", "continuous_bound", "decoder_logits", "decoder_mode",
    "decoder_nll_table", "diffusion_loss", "level_values", "low_discrepancy_times",
    "prior_kl", "q_sample", "reconstruction_nll", "reverse_step", "to_level_index",
]

