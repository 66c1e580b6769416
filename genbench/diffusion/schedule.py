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


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999, sigma_min: float | None = None) -> Tensor:
    """Nichol & Dhariwal 2021 eq. 17: abar(t) = f(t)/f(0), f(t) = cos^2(((t/T) + s)/(1 + s) * pi/2);
    beta_t = 1 - abar_t / abar_{t-1}, clipped at ``max_beta`` (float64).

    ``sigma_min``: the noise std of the first step, sqrt(1 - abar_1), fitted to the data's discretisation.
    Nichol & Dhariwal chose s so that sqrt(beta_1) is slightly below the bin size of K = 256 levels (section 3.2);
    on coarser data (K = 17 levels: bins 16x wider) the steps below a fraction of a bin cost KL terms
    without changing which level a pixel is.  With ``sigma_min`` larger than the schedule's own first noise, the
    T steps are spread over u in [u_min, 1] of the same curve, u_min solving 1 - f(u_min)/f(0) = sigma_min^2
    (the analogue of VDM's gamma_min, Kingma et al. 2021); a smaller ``sigma_min`` changes nothing.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    if sigma_min is not None and T > 1:
        if not 0 < sigma_min < 1:
            raise ValueError(f"sigma_min must be in (0, 1), got {sigma_min}")
        c0 = math.cos(s / (1 + s) * math.pi / 2)
        u_min = (1 + s) * 2 / math.pi * math.acos(math.sqrt(1 - sigma_min**2) * c0) - s
        if u_min > 1.0 / T:
            grid = u_min + (1 - u_min) * torch.arange(T, dtype=torch.float64) / (T - 1)
            steps = torch.cat([torch.zeros(1, dtype=torch.float64), grid])
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def make_betas(kind: str, T: int, sigma_min: float | None = None) -> Tensor:
    """``kind`` = "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal; ``sigma_min``: see ``cosine_betas``)."""
    if kind == "linear":
        if sigma_min is not None:
            raise ValueError("sigma_min fits the cosine schedule's start; use schedule 'cosine' with it")
        return linear_betas(T)
    if kind == "cosine":
        return cosine_betas(T, sigma_min=sigma_min)
    raise ValueError(f"unknown beta schedule {kind!r}; use 'linear' or 'cosine'")


def level_sigma_min(levels: int) -> float:
    """A third of half a level's width on the K-level grid of [-1, 1]: 1 / (3 (K - 1)) (VDM's initial gamma_min,
    Kingma et al. 2021, as noise std): 0.021 at K = 17, 0.0013 at K = 256 (below the cosine schedule's own 0.0064)."""
    return 1.0 / (3.0 * (levels - 1))


# --------------------------------------------------------------------------- the schedule
@dataclass(frozen=True)
class Schedule:
    """Precomputed float64 tables of a beta schedule (on the CPU; gathered values are cast to x's dtype)."""

    betas: Tensor

    @classmethod
    def make(cls, kind: str, T: int, sigma_min: float | None = None) -> "Schedule":
        return cls(make_betas(kind, T, sigma_min))

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

    def respaced(self, indices: "list[int]") -> "Schedule":
        """The schedule of the sub-sequence S = ``indices`` (ascending time indices) that keeps abar at every S_i:
        beta_{S_i} = 1 - abar_{S_i} / abar_{S_{i-1}} (abar before the first index is 1), so index i of the new
        schedule is time index S_i of this one (Nichol & Dhariwal 2021, section 4, "Improving sampling speed")."""
        idx = list(indices)
        if not idx or idx != sorted(set(idx)) or idx[0] < 0 or idx[-1] >= self.T:
            raise ValueError(f"respaced needs distinct ascending time indices in 0..{self.T - 1}, got {idx}")
        ab = self.alpha_bar[idx]
        ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
        return Schedule(1.0 - ab / ab_prev)

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


def model_mean(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor, clip_x0: float | None = None) -> Tensor:
    """The reverse-process mean mu_theta(x_t, t).

    Without clipping it is eq. 11 of Ho et al.  With ``clip_x0`` the predicted x_0 (eq. 15) is clamped to
    [-clip_x0, clip_x0] and the mean is the posterior mean eq. 7 at that x_0 (identical to eq. 11 when nothing is
    clipped), as in Ho et al.'s released sampler.  The bound (``vlb``) uses the same mean as the sampler, so it is
    the bound of the model that is sampled.  For data inside [-clip_x0, clip_x0] clipping never increases a KL
    term: the posterior mean is affine in x_0 with a positive coefficient and clamping moves x_0's prediction
    toward the true x_0.  It matters at the cosine schedule's last step (beta_T clipped at 0.999), where eq. 11
    multiplies the error of eps by 1 / sqrt(alpha_T) ~ 32.
    """
    if clip_x0 is None:
        return p_mean(s, xt, t, eps)
    mean, _ = q_posterior(s, predict_x0(s, xt, t, eps).clamp(-clip_x0, clip_x0), xt, t)
    return mean


def clamped_eps(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor, clip_x0: float) -> Tensor:
    """eps recomputed from the predicted x_0 (eq. 15) clamped to [-clip_x0, clip_x0]: with it eq. 11 gives the
    mean of ``model_mean(..., clip_x0)``."""
    return eps_from_x0(s, xt, t, predict_x0(s, xt, t, eps).clamp(-clip_x0, clip_x0))


def reverse_step(
    s: Schedule, xt: Tensor, t: Tensor, eps: Tensor, noise: Tensor | None, variance: str = "beta",
    clip_x0: float | None = None, log_var: Tensor | None = None,
) -> Tensor:
    """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, with z = 0 at the last step (t index 0).

    The mean is ``model_mean`` (eq. 11, or the posterior mean at the clamped predicted x_0 with ``clip_x0``).
    sigma_t^2 is the fixed ``variance`` ("beta" or "posterior"), or exp(``log_var``) of a learned variance
    (Nichol & Dhariwal 2021 eq. 15, ``learned_variance``) when given.
    """
    mean = model_mean(s, xt, t, eps, clip_x0)
    if noise is None:
        return mean
    sigma = (0.5 * log_var).exp() if log_var is not None else extract(s.sigma2(variance), t, xt).sqrt()
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
