"""Learned reverse-process variances and the hybrid objective (Nichol & Dhariwal 2021, "Improved DDPM").

The network outputs 2C channels for C data channels: eps_theta and v.  The reverse variance interpolates in the
log domain between the two fixed choices of Ho et al. (eq. 15):

    Sigma_theta(x_t, t) = exp(v log beta_t + (1 - v) log beta~_t)

(v is not constrained: v = 1 gives beta_t, v = 0 the posterior variance beta~_t, clipped at the first step as in
``Schedule.posterior_log_variance_clipped``).  Training minimises (eq. 16)

    L_hybrid = L_simple + lambda L_vlb,   lambda = 0.001,

with a stop-gradient on the mean in L_vlb, so the mean is trained by L_simple and the variance by L_vlb
(section 3.1).  As in their code, L_vlb is one term L_t in bits per dimension times T (an unbiased estimate of
the sum over t for uniform t; with an importance sampler, ``importance``, each image is weighted by
1 / (T p_t)); ``loss="vlb"`` trains mean and variance on L_vlb alone (their L_vlb), where importance sampling
of t matters most (section 3.3).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .decoders import L0Fn
from .importance import ImportanceSampler
from .schedule import Schedule, extract, q_sample
from .training import optimiser_step
from .vlb import vlb_term

LOSSES = ("simple", "hybrid", "vlb")


def interpolated_log_variance(s: Schedule, t: Tensor, v: Tensor) -> Tensor:
    """log Sigma_theta = v log beta_t + (1 - v) log beta~_t elementwise (eq. 15), in v's dtype and shape."""
    log_beta = extract(s.betas.log(), t, v)
    log_tilde = extract(s.posterior_log_variance_clipped, t, v)
    return v * log_beta + (1 - v) * log_tilde


def split_output(out: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """(eps, v) from the network's 2C output channels: the first C are eps, the last C are v."""
    if out.shape[1] != 2 * channels:
        raise ValueError(f"a learned-variance network outputs {2 * channels} channels, got {out.shape[1]}")
    return out[:, :channels], out[:, channels:]


def eps_and_log_variance(s: Schedule, out: Tensor, t: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """(eps_theta, log Sigma_theta) from the network output: what ``vlb`` and ``samplers`` take for a learned
    variance."""
    eps, v = split_output(out, channels)
    return eps, interpolated_log_variance(s, t, v)


def hybrid_loss(
    net: Callable[[Tensor, Tensor], Tensor], s: Schedule, x0: Tensor, l0: L0Fn, *, loss: str = "hybrid",
    lam: float = 0.001, sampler: ImportanceSampler | None = None, clip_x0: float | None = None,
    variance: str = "posterior",
) -> tuple[Tensor, Tensor, Tensor]:
    """The training loss of a learned-variance network on a batch x0 (eq. 16, or L_vlb alone with loss="vlb").

    t is uniform over the T indices, or drawn from ``sampler`` with each image weighted by 1 / (T p_t) (so the
    expected loss is that of uniform t).  Per image: L_simple = mean over elements of (eps - eps_theta)^2, and
    L_t of the bound (``vlb.vlb_term``, L_0 at t index 0) in bits per element at Sigma_theta of eq. 15 and at
    the mean from eps_theta detached for "hybrid" (the stop-gradient), not detached for "vlb".  A network with C
    output channels (no learned variance) uses the fixed ``variance`` instead, for loss="vlb".  The loss is the
    batch mean of weight * (L_simple + lam * T * L_t) for "hybrid" and of weight * T * L_t for "vlb".

    Returns (loss, L_t in nats per image summed over elements (detached, for ``sampler.update``), t).
    """
    if loss not in ("hybrid", "vlb"):
        raise ValueError(f"hybrid_loss trains 'hybrid' or 'vlb', got {loss!r}")
    B, C = len(x0), x0.shape[1]
    if sampler is None:
        t = torch.randint(0, s.T, (B,), device=x0.device)
        weight = torch.ones(B, device=x0.device, dtype=x0.dtype)
    else:
        t, weight = sampler.sample(B, device=x0.device)
        weight = weight.to(x0.dtype)
    eps = torch.randn_like(x0)
    xt = q_sample(s, x0, t, eps)
    out = net(xt, t)
    if out.shape[1] == C:
        eps_hat, log_var = out, None
    else:
        eps_hat, v = split_output(out, C)
        log_var = interpolated_log_variance(s, t, v)
    mean_eps = eps_hat.detach() if loss == "hybrid" else eps_hat
    term = vlb_term(s, x0, xt, t, mean_eps, l0, variance, log_var=log_var, clip_x0=clip_x0).flatten(1)  # nats per element
    vb_bits = term.mean(1) / math.log(2.0)
    if loss == "hybrid":
        simple = (eps - eps_hat).pow(2).flatten(1).mean(1)
        per_image = simple + lam * s.T * vb_bits
    else:
        per_image = s.T * vb_bits
    return (weight * per_image).mean(), term.sum(1).detach(), t


def hybrid_step(
    net: torch.nn.Module, opt: torch.optim.Optimizer, s: Schedule, x0: Tensor, lr: float, grad_clip: float,
    l0: L0Fn, *, loss: str = "hybrid", lam: float = 0.001, sampler: ImportanceSampler | None = None,
    clip_x0: float | None = None, variance: str = "posterior",
) -> tuple[Tensor, Tensor]:
    """One optimiser step on ``hybrid_loss`` (learning rate ``lr``, gradient-norm clipping at ``grad_clip``, 0 =
    off); the sampler's history is updated with the batch's L_t.  Returns (loss, gradient norm), detached."""
    value, terms, t = hybrid_loss(net, s, x0, l0, loss=loss, lam=lam, sampler=sampler, clip_x0=clip_x0,
                                  variance=variance)
    result = optimiser_step(net, opt, value, lr, grad_clip)
    if sampler is not None:
        sampler.update(t, terms)
    return result


def options_error(learn_sigma: bool, loss: str, t_sampling: str) -> str | None:
    """Why a combination of the training options cannot work (one line naming the fix), or None."""
    if loss not in LOSSES:
        return f"loss must be one of {', '.join(LOSSES)}, got {loss!r}; use e.g. --set loss=hybrid"
    if t_sampling not in ("uniform", "importance"):
        return f"t_sampling must be 'uniform' or 'importance', got {t_sampling!r}; use e.g. --set t_sampling=uniform"
    if learn_sigma and loss == "simple":
        return ("learn_sigma=true needs a loss that trains the variance: L_simple has no gradient for it; "
                "use --set loss=hybrid (or loss=vlb)")
    if loss == "hybrid" and not learn_sigma:
        return ("loss=hybrid trains the learned variance through L_vlb (its mean is stop-gradient); "
                "add --set learn_sigma=true, or use loss=simple / loss=vlb")
    if t_sampling == "importance" and loss == "simple":
        return ("t_sampling=importance weights t by the history of L_vlb terms, which loss=simple does not compute; "
                "use --set loss=hybrid or loss=vlb with it")
    return None
