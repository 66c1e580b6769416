"""The ELBO (Kingma & Welling 2014) and the IWAE bound (Burda et al. 2016), pure maths on tensors.

q(z|x) = N(mu, diag(exp(logvar))), p(z) = N(0, I) unless a ``log_prior`` is passed (see
``priors``), p(x|z) a discrete likelihood.

ELBO (K&W 2014, eq. 3 / eq. 10, the SGVB estimator B):
    L(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)),
    KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))         (K&W 2014, App. B)
IWAE-k (Burda et al. 2016, eq. 8):
    L_k(x) = E_{z_1..z_k ~ q} [ log 1/k sum_i p(x, z_i) / q(z_i|x) ],
    L_1 = ELBO <= L_k <= L_{k+1} <= log p(x)   (Burda et al. 2016, Theorem 1).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row (B,), the closed form of K&W 2014 App. B."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dim."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dim."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def reparameterise(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (K&W 2014, eq. 4 with g = location-scale)."""
    return mu + torch.exp(0.5 * logvar) * eps


def elbo_terms(
    log_px_z: Tensor, mu: Tensor, logvar: Tensor, kl: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(elbo, reconstruction, kl) per image from log p(x|z) at z ~ q (one or the mean of several draws).

    ``kl`` defaults to the closed form against N(0, I); a learned prior passes its own estimate.
    """
    kl = kl_to_standard_normal(mu, logvar) if kl is None else kl
    return log_px_z - kl, log_px_z, kl


def log_importance_weights(
    log_px_z: Tensor, z: Tensor, mu: Tensor, logvar: Tensor,
    log_prior: Callable[[Tensor], Tensor] = log_standard_normal,
) -> Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x), shapes broadcast over leading sample dims."""
    return log_px_z + log_prior(z) - log_normal(z, mu, logvar)


def iwae_bound(
    mu: Tensor, logvar: Tensor, eps: Tensor, log_px_given: Callable[[Tensor], Tensor], chunk: int,
    log_prior: Callable[[Tensor], Tensor] = log_standard_normal,
) -> Tensor:
    """L_k per image (B,) (Burda et al. 2016, eq. 8) with k = eps.shape[0] draws z_i = mu + sigma eps_i.

    ``eps``: (k, B, L).  ``log_px_given(z)`` maps z (m, B, L) to log p(x|z) (m, B).  The k
    samples are evaluated ``chunk`` at a time and combined with a running logsumexp, so
    memory does not grow with k.
    """
    k = eps.shape[0]
    running = torch.full(mu.shape[:1], -math.inf, device=mu.device, dtype=torch.float64)
    for i in range(0, k, chunk):
        z = reparameterise(mu, logvar, eps[i : i + chunk])
        log_w = log_importance_weights(log_px_given(z), z, mu, logvar, log_prior).double()
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
    return (running - math.log(k)).to(mu.dtype)
