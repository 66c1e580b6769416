"""The negative variational bound of Ho et al. 2020 eq. 5 over any epsilon-predicting callable, nats per image.

    -log p(x_0) <= L = L_T + sum_{t=2}^{T} L_{t-1} + L_0

L_T (``prior_kl``) and the L_{t-1} (Gaussian KLs) are the same for every diffusion; L_0 is passed in as a
callable (``decoders``): the discretised Gaussian decoder for pixels, a Gaussian density for latents.  Each
L_{t-1} is itself an expectation over x_t ~ q(x_t | x_0); we use one draw of x_t per term, which keeps every
estimate unbiased.

The network callable returns eps, or a pair (eps, log Sigma) for a learned variance (Nichol & Dhariwal 2021
eq. 15, ``learned_variance``); ``clip_x0`` takes the mean from the clamped predicted x_0 as the sampler does
(``schedule.model_mean``), so the bound is that of the sampled model.

Two estimators:
  ``vlb_terms``       every term, T network evaluations per image (exact in t);
  ``vlb_stratified``  L_T + L_0 + sum over strata S_j of |S_j| * L_{t_j - 1}, with t_j drawn uniformly in
                      stratum S_j of {2..T}: an unbiased estimate of the sum over t with k + 1 network
                      evaluations per image.  The strata are geometrically spaced in t because the terms
                      are largest (and vary most) at small t; with k = T - 1 every stratum is one step and
                      the estimate equals ``vlb_terms`` summed.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .decoders import L0Fn
from .schedule import Schedule, extract, model_mean, q_posterior, q_sample

# eps_theta(x_t, t), or (eps_theta, log Sigma_theta) for a learned variance
EpsFn = Callable[[Tensor, Tensor], "Tensor | tuple[Tensor, Tensor]"]


def split_eps(out: "Tensor | tuple[Tensor, Tensor]") -> tuple[Tensor, Tensor | None]:
    """(eps, log variance or None) from what an ``EpsFn`` returned."""
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


# --------------------------------------------------------------------------- terms of the bound
def normal_kl(mean1: Tensor, var1: Tensor, mean2: Tensor, var2: Tensor) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise, in nats."""
    return 0.5 * (torch.log(var2) - torch.log(var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def prior_kl(s: Schedule, x0: Tensor) -> Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per element (Ho et al. eq. 5), in nats."""
    t = torch.full((len(x0),), s.T - 1, dtype=torch.long)
    ab = extract(s.alpha_bar, t, x0)
    return normal_kl(ab.sqrt() * x0, (1 - ab).expand_as(x0), torch.zeros_like(x0), torch.ones_like(x0))


def vlb_term(
    s: Schedule, x0: Tensor, xt: Tensor, t: Tensor, eps: Tensor, l0: L0Fn, variance: str = "beta", *,
    log_var: Tensor | None = None, clip_x0: float | None = None,
) -> Tensor:
    """One term of the bound per element, nats (Ho et al. eq. 5):

    t index > 0:  L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)),  p = N(mu_theta (eq. 11), sigma_t^2);
    t index = 0:  L_0 = ``l0(x_0, mu_theta(x_1, 1), sigma_1^2)`` (mu_theta(x_1, 1) equals the predicted x_0).
    ``xt`` must be a draw of q(x_t | x_0) at those t.  ``log_var`` (a learned log sigma_t^2, eq. 15 of Nichol &
    Dhariwal 2021) replaces the fixed ``variance``; ``clip_x0`` selects the clipped mean (``model_mean``).
    """
    mu = model_mean(s, xt, t, eps, clip_x0)
    var = log_var.exp() if log_var is not None else extract(s.sigma2(variance), t, xt).expand_as(xt)
    q_mean, q_var = q_posterior(s, x0, xt, t)
    # at t index 0 the posterior variance is 0; keep the KL finite there (the value is replaced by L_0 anyway)
    kl = normal_kl(q_mean, q_var.clamp(min=1e-30), mu, var).clamp(min=0)  # >= 0; rounding gives -1e-16
    first = (t == 0).to(x0.device).reshape(len(t), *([1] * (x0.dim() - 1)))
    # L_0 only where t index = 0; elsewhere it sees mean = x0 so that neither value nor gradient can be non-finite
    nll0 = l0(x0, torch.where(first, mu, x0), var)
    return torch.where(first, nll0, kl)


# --------------------------------------------------------------------------- estimators
def _terms_at(
    eps_fn: EpsFn, s: Schedule, x0: Tensor, t: Tensor, noise: Tensor, l0: L0Fn, variance: str, chunk: int,
    clip_x0: float | None = None,
) -> Tensor:
    """Per-row terms (nats, summed over elements) at time indices t (one per row), x_t from ``noise``."""
    out = []
    for i in range(0, len(x0), chunk):
        sl = slice(i, i + chunk)
        xt = q_sample(s, x0[sl], t[sl], noise[sl])
        eps, log_var = split_eps(eps_fn(xt, t[sl].to(x0.device)))
        term = vlb_term(s, x0[sl], xt, t[sl], eps, l0, variance, log_var=log_var, clip_x0=clip_x0)
        out.append(term.flatten(1).sum(1))
    return torch.cat(out)


def vlb_terms(
    eps_fn: EpsFn, s: Schedule, x0: Tensor, l0: L0Fn, *, variance: str = "beta",
    generator: torch.Generator | None = None, chunk: int = 1024, clip_x0: float | None = None,
) -> Tensor:
    """All T + 1 terms per image, (B, T + 1) nats: column i < T is the term at time index i (column 0 is
    L_0, column i >= 1 is the paper's L_i = KL at step i + 1), column T is L_T.  T evaluations per image."""
    B, T = len(x0), s.T
    rep = x0.repeat_interleave(T, dim=0)
    noise = torch.randn(rep.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    t = torch.arange(T).repeat(B)
    terms = _terms_at(eps_fn, s, rep, t, noise, l0, variance, chunk, clip_x0).reshape(B, T)
    return torch.cat([terms, prior_kl(s, x0).flatten(1).sum(1, keepdim=True)], dim=1)


def strata(T: int, k: int) -> list[tuple[int, int]]:
    """Half-open ranges [a, b) of time indices covering 1..T-1 (paper t = 2..T): at most k of them,
    geometrically growing, every one non-empty.  k >= T - 1 gives one index per stratum."""
    if T < 2:
        return []
    k = max(1, min(k, T - 1))
    edges = torch.logspace(0, torch.log10(torch.tensor(float(T))), k + 1).round().long().tolist()
    edges[0], edges[-1] = 1, T
    out, a = [], 1
    for b in edges[1:]:
        b = max(b, a + 1)
        if b > T:
            break
        out.append((a, b))
        a = b
    if a < T:
        out[-1] = (out[-1][0], T)
    return out


def vlb_stratified(
    eps_fn: EpsFn, s: Schedule, x0: Tensor, k: int, l0: L0Fn, *, variance: str = "beta",
    generator: torch.Generator | None = None, chunk: int = 1024, clip_x0: float | None = None,
) -> Tensor:
    """Unbiased stratified estimate of the bound L per image (B,) nats, float64 on x0's device, with
    k + 1 evaluations per image (k >= T - 1: every term, exact in t)."""
    B = len(x0)
    ranges = strata(s.T, k)
    rep = x0.repeat_interleave(len(ranges) + 1, dim=0)
    noise = torch.randn(rep.shape, generator=generator, dtype=x0.dtype).to(x0.device)  # drawn first: with k = T - 1
    # the draws are those of vlb_terms, so the two agree exactly
    t_cols, w_cols = [torch.zeros(B, dtype=torch.long)], [torch.ones(B, dtype=torch.float64)]  # L_0, weight 1
    for a, b in ranges:
        t_cols.append(torch.randint(a, b, (B,), generator=generator))
        w_cols.append(torch.full((B,), float(b - a), dtype=torch.float64))
    t = torch.stack(t_cols, 1)  # (B, m)
    w = torch.stack(w_cols, 1)
    m = t.shape[1]
    terms = _terms_at(eps_fn, s, rep, t.reshape(-1), noise, l0, variance, chunk, clip_x0)
    total = (terms.double().cpu().reshape(B, m) * w).sum(1)
    return (total + prior_kl(s, x0).flatten(1).sum(1).double().cpu()).to(x0.device)
