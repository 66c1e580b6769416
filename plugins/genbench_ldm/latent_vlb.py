"""The diffusion bound on the log-density of *continuous* latents u_0 (Ho et al. 2020 eq. 5), in nats per image.

    -log p(u_0) <= L_T + sum_{t=2}^{T} L_{t-1} + L_0,

with L_T and the L_{t-1} (Gaussian KLs) exactly as for pixels (``genbench_ddpm.schedule``), but with a
Gaussian *density* as the last term, L_0 = -log N(u_0; mu_theta(u_1, 1), sigma_1^2), instead of Ho et al.'s
discretised decoder (eq. 13): latents are continuous, so this is a bound on a density, and the latent-
diffusion bound turns it into a bound on a probability of discrete images through q(z | x) (``bound``).

The sum over t uses the DDPM plugin's stratification (``genbench_ddpm.vlb.strata``): L_T + L_0 exactly in t and
an unbiased estimate of the sum with one uniform t per geometric stratum; one draw of u_t per term.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from genbench_ddpm.schedule import Schedule, extract, normal_kl, p_mean, prior_kl, q_posterior, q_sample
from genbench_ddpm.vlb import strata

EpsFn = Callable[[Tensor, Tensor], Tensor]


def continuous_vlb_term(s: Schedule, u0: Tensor, ut: Tensor, t: Tensor, eps: Tensor, variance: str) -> Tensor:
    """Per-element term (nats) at time indices t: KL(q(u_{t-1} | u_t, u_0) || p_theta(u_{t-1} | u_t)) for
    t index > 0 and the Gaussian L_0 = -log N(u_0; mu_theta(u_1, 1), sigma_1^2) at t index 0."""
    mu = p_mean(s, ut, t, eps)
    var = extract(s.sigma2(variance), t, ut).expand_as(ut)
    q_mean, q_var = q_posterior(s, u0, ut, t)
    kl = normal_kl(q_mean, q_var.clamp(min=1e-30), mu, var).clamp(min=0)
    nll0 = 0.5 * (math.log(2 * math.pi) + var.log() + (u0 - mu) ** 2 / var)
    first = (t == 0).to(u0.device).reshape(len(t), *([1] * (u0.dim() - 1)))
    return torch.where(first, nll0, kl)


def _terms_at(eps_fn: EpsFn, s: Schedule, u0: Tensor, t: Tensor, noise: Tensor, variance: str, chunk: int) -> Tensor:
    out = []
    for i in range(0, len(u0), chunk):
        sl = slice(i, i + chunk)
        tt = t[sl].to(u0.device)
        ut = q_sample(s, u0[sl], tt, noise[sl])
        out.append(continuous_vlb_term(s, u0[sl], ut, tt, eps_fn(ut, tt), variance).flatten(1).sum(1))
    return torch.cat(out)


def continuous_vlb_stratified(
    eps_fn: EpsFn, s: Schedule, u0: Tensor, k: int, *, variance: str = "beta",
    generator: torch.Generator | None = None, chunk: int = 1024,
) -> Tensor:
    """Unbiased estimate of the bound on -log p(u_0) per image (B,) nats, float64 on u0's device;
    ``k`` + 1 network evaluations per image (k >= T - 1: every term, exact in t)."""
    B = len(u0)
    ranges = strata(s.T, k)
    rep = u0.repeat_interleave(len(ranges) + 1, dim=0)
    noise = torch.randn(rep.shape, generator=generator, dtype=u0.dtype).to(u0.device)
    t_cols, w_cols = [torch.zeros(B, dtype=torch.long)], [torch.ones(B, dtype=torch.float64)]
    for a, b in ranges:
        t_cols.append(torch.randint(a, b, (B,), generator=generator))
        w_cols.append(torch.full((B,), float(b - a), dtype=torch.float64))
    t, w = torch.stack(t_cols, 1), torch.stack(w_cols, 1)
    terms = _terms_at(eps_fn, s, rep, t.reshape(-1), noise, variance, chunk)
    total = (terms.double().cpu().reshape(B, t.shape[1]) * w).sum(1)
    return (total + prior_kl(s, u0).flatten(1).sum(1).double().cpu()).to(u0.device)
