"""Completion by sampling-importance-resampling over a pool of prior draws, for latent-variable models whose decoder
factorises over the sub-pixels given the latent (the latent diffusion's and the VAE's discrete decoders).

For such a model, p(x) = integral of p(z) prod_d p(x_d | z) dz, the conditional of the unknown sub-pixels u given
the known ones k is exactly

    p(u | k) = integral of p(u | z) p(z | k) dz,      p(z | k) = p(z) p(k | z) / p(k),   p(k | z) = prod_{d known} p(x_d | z),

so a draw of p(u | k) is a draw of z from the posterior p(z | k) followed by a draw of u from the decoder.
Sampling-importance-resampling (Rubin 1988; Smith & Gelfand 1992) draws the posterior with the prior as the proposal:
M latents z_1..z_M ~ p(z), weights w_m = p(k | z_m) (the target over the proposal, up to p(k)), one z_m kept with
probability w_m / sum_j w_j.  As M grows the kept latent's law tends to p(z | k) (self-normalised importance
sampling; the error is O(1/M)), so the completion tends to the model's own exact conditional, whatever the mask.
How far it is from there shows in the effective sample size, ESS = 1 / sum_m (w_m / sum_j w_j)^2 (Kong 1992): the
number of pool members that carry the weight; an ESS near 1 means the kept draw is the pool's best match to the
known sub-pixels and a larger pool would still move the result.

The pool is shared by the images of one call: every image has its own weights over the same M prior draws, so each
image's kept draw is a SIR draw of its own conditional (draws of different images in one call are not
independent; completions of one image made by separate calls are).  That makes the pool's cost one sampling run
per call rather than per image.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor

from genbench.nn.discrete import DiscreteLikelihood

__all__ = ["POOL_CHUNK", "choose_from_pool", "effective_sample_size", "pool_log_weights", "record_effective_sample_size", "resample"]

log = logging.getLogger("genbench.tasks")

#: pool members scored at once (bounds the (chunk, sub-pixels, levels) table of log-probabilities)
POOL_CHUNK = 64


def pool_log_weights(lik: DiscreteLikelihood, params: Tensor, levels: Tensor, known: Tensor,
                     chunk: int = POOL_CHUNK) -> Tensor:
    """log p(k_i | z_m) for every image i and pool member m: (n, M) float64.

    ``params`` (M, C, P, H, W) the decoder's outputs for the pool's latents, ``levels`` (n, C, H, W) int64 the
    images' levels, ``known`` (n, C or 1, H, W) bool the sub-pixels given.  The sum over the known sub-pixels of
    log p(x_d = level | z) (the decoder's conditional independence)."""
    n = len(levels)
    d = levels[0].numel()
    lv = levels.reshape(n, d).to(params.device)
    kn = known.expand_as(levels).reshape(n, d).to(params.device, torch.float64)
    cols = torch.arange(d, device=params.device).unsqueeze(0)  # (1, D): with lv, picks log p(x_d = level_i,d)
    out = []
    for a in range(0, len(params), chunk):
        lp = lik.log_probs_all(params[a : a + chunk]).reshape(-1, d, lik.levels).double()  # (b, D, K)
        picked = lp[:, cols, lv]  # (b, n, D)
        out.append((picked * kn).sum(-1).T)  # (n, b)
    return torch.cat(out, dim=1)


def effective_sample_size(log_weights: Tensor) -> Tensor:
    """Kong's ESS = 1 / sum_m p_m^2 with p the normalised weights, per row of ``log_weights`` (n, M)."""
    p = torch.softmax(log_weights.double(), dim=1)
    return 1.0 / (p * p).sum(1)


def record_effective_sample_size(model: object, ess: Tensor) -> None:
    """Keep the images' ESS on the model (``restoration_diagnostics``, which ``genbench.tasks.run`` empties before
    a restoration and summarises into the task rows' details)."""
    store = getattr(model, "restoration_diagnostics", None)
    if not isinstance(store, dict):
        store = {}
        setattr(model, "restoration_diagnostics", store)
    store.setdefault("effective_sample_size", []).extend(float(v) for v in ess.flatten())


def resample(log_weights: Tensor, generator: torch.Generator | None) -> Tensor:
    """One pool index per row of ``log_weights`` (n, M), drawn with probability proportional to exp(weight)
    (on the CPU from ``generator``, as the samplers' noise)."""
    probs = torch.softmax(log_weights.double().cpu(), dim=1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def choose_from_pool(model: object, log_weights: Tensor, generator: torch.Generator | None, what: str) -> Tensor:
    """One pool index per image drawn by ``resample``, after recording the images' ESS on ``model`` for the rows
    (``record_effective_sample_size``) and logging it; ``what`` names the method in the log line."""
    ess = effective_sample_size(log_weights)
    record_effective_sample_size(model, ess)
    log.info("%s: pool %d, effective sample size median %.2f, min %.2f over %d images",
             what, log_weights.shape[1], float(ess.median()), float(ess.min()), len(log_weights))
    return resample(log_weights, generator)
