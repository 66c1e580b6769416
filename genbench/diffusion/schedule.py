"""The DDPM noise schedule and the closed-form maths around it (Ho et al. 2020). No networks here.

Index convention: a time index ``t`` is an integer tensor in ``0..T-1``; index ``t`` is the paper's
step ``t + 1``.  So ``alpha_bar[t] = prod_{s <= t} (1 - beta[s])`` (paper: abar_{t+1}) and
``alpha_bar_prev[t] = alpha_bar[t - 1]`` with ``alpha_bar_prev[0] = 1`` (abar_0 = 1).  Data live in
[-1, 1] (Ho et al. section 3.3); callers map [0, 1] images with ``2 x - 1``.

Everything works on any tensor shape (B, ...) so the same functions serve pixels and latents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


# --------------------------------------------------------------------------- beta schedules
def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02, scale_to_T: bool = True) -> Tensor:
    """Ho et al. section 4: betas linear from 1e-4 to 0.02 for T = 1000 (float64).

    With ``scale_to_T`` the end points are multiplied by 1000 / T (Nichol & Dhariwal 2021, section 3.2's
    convention) so that a shorter chain destroys the signal as much as the paper's T = 1000 chain does.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    scale = 1000.0 / T if scale_to_T else 1.0
    return torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal 2021 eq. 17: abar(t) = f(t)/f(0), f(t) = cos^2(((t/T) + s)/(1 + s) * pi/2);
    beta_t = 1 - abar_t / abar_{t-1}, clipped at ``max_beta`` (float64)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def make_betas(kind: str, T: int) -> Tensor:
    """``kind`` = "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal)."""
    if kind == "linear":
        return linear_betas(T)
    if kind == "cosine":
        return cosine_betas(T)
    raise ValueError(f"unknown beta schedule {kind!r}; use 'linear' or 'cosine'")


# --------------------------------------------------------------------------- the schedule
@dataclass(frozen=True)
class Schedule:
    """Precomputed float64 tables of a beta schedule (on the CPU; gathered values are cast to x's dtype)."""

    betas: Tensor

    @classmethod
    def make(cls, kind: str, T: int) -> "Schedule":
        return cls(make_betas(kind, T))

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> Tensor:
        """abar_t = prod_{s<=t} alpha_s (Ho et al., text above eq. 4)."""
        return torch.cumprod(self.alphas, 0)

    @property
    def alpha_bar_prev(self) -> Tensor:
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])

    @property
    def posterior_variance(self) -> Tensor:
        """beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t (Ho et al. eq. 7); 0 at the first step."""
        return (1 - self.alpha_bar_prev) / (1 - self.alpha_bar) * self.betas

    @property
    def posterior_log_variance_clipped(self) -> Tensor:
        """log beta~_t with the first entry (0) replaced by beta~ of the second step, as in Ho et al.'s code."""
        v = self.posterior_variance
        if self.T == 1:
            return self.betas.log()
        return torch.cat([v[1:2], v[1:]]).log()

    def sigma2(self, variance: str) -> Tensor:
        """The reverse-process variance sigma_t^2 of Ho et al. section 3.2: "beta" (sigma^2 = beta_t) or
        "posterior" (sigma^2 = beta~_t, its first entry clipped as in ``posterior_log_variance_clipped``)."""
        if variance == "beta":
            return self.betas
        if variance == "posterior":
            return self.posterior_log_variance_clipped.exp()
        raise ValueError(f"unknown reverse variance {variance!r}; use 'beta' or 'posterior'")


def extract(table: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """table[t] reshaped to (B, 1, 1, ...) to broadcast against ``like``, in like's dtype and device."""
    out = table.to(like.device)[t.to(like.device).long()].to(like.dtype)
    return out.reshape(len(t), *([1] * (like.dim() - 1)))


# --------------------------------------------------------------------------- forward process
def q_sample(s: Schedule, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw from q(x_t | x_0) (Ho et al. eq. 4)."""
    ab = extract(s.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_step(s: Schedule, x_prev: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """One forward step x_t ~ q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (Ho et al. eq. 2)."""
    b = extract(s.betas, t, x_prev)
    return (1 - b).sqrt() * x_prev + b.sqrt() * noise


def q_posterior(s: Schedule, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eqs. 6-7):
    mu~ = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
    beta~ = (1 - abar_{t-1}) / (1 - abar_t) beta_t."""
    ab, ab_prev, b = extract(s.alpha_bar, t, xt), extract(s.alpha_bar_prev, t, xt), extract(s.betas, t, xt)
    mean = ab_prev.sqrt() * b / (1 - ab) * x0 + (1 - b).sqrt() * (1 - ab_prev) / (1 - ab) * xt
    return mean, extract(s.posterior_variance, t, xt).expand_as(xt)


def predict_x0(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), eq. 4 solved for x_0 (Ho et al. eq. 15)."""
    ab = extract(s.alpha_bar, t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_from_x0(s: Schedule, xt: Tensor, t: Tensor, x0: Tensor) -> Tensor:
    """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t), the inverse of ``predict_x0``."""
    ab = extract(s.alpha_bar, t, xt)
    return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()


# --------------------------------------------------------------------------- reverse process
def p_mean(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """mu_theta(x_t, t) = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_theta) (Ho et al. eq. 11)."""
    b, ab = extract(s.betas, t, xt), extract(s.alpha_bar, t, xt)
    return (xt - b / (1 - ab).sqrt() * eps) / (1 - b).sqrt()


def reverse_step(
    s: Schedule, xt: Tensor, t: Tensor, eps: Tensor, noise: Tensor | None, variance: str = "beta",
    clip_x0: float | None = None,
) -> Tensor:
    """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, with z = 0 at the last step (t index 0).

    Without clipping the mean is eq. 11.  With ``clip_x0`` the predicted x_0 (eq. 15) is clamped to
    [-clip_x0, clip_x0] and the mean is the posterior mean eq. 7 at that x_0 (identical to eq. 11
    when nothing is clipped), as in Ho et al.'s released sampler.
    """
    if clip_x0 is None:
        mean = p_mean(s, xt, t, eps)
    else:
        mean, _ = q_posterior(s, predict_x0(s, xt, t, eps).clamp(-clip_x0, clip_x0), xt, t)
    if noise is None:
        return mean
    sigma = extract(s.sigma2(variance), t, xt).sqrt()
    nonzero = (t > 0).to(xt.dtype).to(xt.device).reshape(len(t), *([1] * (xt.dim() - 1)))
    return mean + nonzero * sigma * noise


def ddim_step(
    s: Schedule, xt: Tensor, t: Tensor, t_prev: Tensor, eps: Tensor, noise: Tensor | None, eta: float = 0.0,
    clip_x0: float | None = None,
) -> Tensor:
    """One DDIM step from index t to index t_prev < t (t_prev = -1 means "to x_0") (Song et al. 2021 eq. 12):

    x_prev = sqrt(abar_prev) x0_pred + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
    sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)   (eq. 16).

    eta = 0 is the deterministic DDIM; eta = 1 with consecutive steps is the ancestral sampler with
    sigma^2 = beta~.  With ``clip_x0`` the predicted x_0 is clamped and eps recomputed from it.
    """
    ab = extract(s.alpha_bar, t, xt)
    ab_full = torch.cat([torch.ones(1, dtype=torch.float64), s.alpha_bar])  # index shifted by one: -1 -> 1.0
    ab_prev = extract(ab_full, t_prev + 1, xt)
    x0 = predict_x0(s, xt, t, eps)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = eps_from_x0(s, xt, t, x0)
    sigma = eta * ((1 - ab_prev) / (1 - ab)).sqrt() * (1 - ab / ab_prev).clamp(min=0).sqrt()
    out = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
    if noise is not None and eta > 0:
        out = out + sigma * noise
    return out
