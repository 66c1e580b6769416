"""PixelCNN completion: exact for raster-order-prefix masks, sampling-importance-resampling for the others.

An autoregressive model p(x) = prod_d p(x_d | x_<d) (van den Oord et al. 2016a, eq. 1) gives the conditional of
the unknown sub-pixels u given the known ones k exactly by ancestral sampling only when every known sub-pixel
comes before every unknown one in raster order (a prefix: e.g. the bottom half unknown).  For any other mask
(centre, left half, random pixels) the known sub-pixels *after* an unknown one carry information that ancestral
sampling ignores, and p(x_d | everything else) is not available from the network (it gives p(x_d | x_<d) only),
so Gibbs sampling with the true full conditionals is not possible either.

What we do instead is sampling-importance-resampling (Rubin 1988; the single-step case of sequential Monte Carlo,
Doucet et al. 2001): draw K proposals of u by ancestral sampling with the known sub-pixels fixed,

    q(u) = prod_{d unknown} p(u_d | x_<d),

and weight each by the target over the proposal, p(u, k) / q(u) = prod_{d known} p(k_d | x_<d), the product of
the known sub-pixels' conditionals given the proposal before them (one extra network pass on the completed
image; known sub-pixels before the first unknown one give the same factor to every proposal and cancel); then
keep one proposal per image drawn with probability proportional to its weight.  The kept draw's law tends to the
exact conditional p(u | k) as K grows (the error is O(1/K)); with K = 1 it is the proposal q, the naive
"condition on what is above/left" completion.  For a raster-prefix mask every weight is equal, so we skip the
proposals and sample once (exact).  The task rows say which (``method`` in their details).  Cost per image:
K x (the unknown sub-pixels' evaluations + 1 scoring pass).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from genbench.tasks.masks import is_raster_prefix
from genbench.tasks.options import TaskOption

__all__ = ["PARTICLES", "TASK_OPTIONS", "completion_method", "importance_complete", "known_log_weights"]

#: K, proposals per image for masks that are not a raster-order prefix (``--task-set particles=K``)
PARTICLES = 16
TASK_OPTIONS = {"particles": TaskOption("proposals per image of the PixelCNN's importance-resampling completion for "
                                        "masks that are not a raster-order prefix", PARTICLES)}

#: sample(known values, known mask, generator) -> completed images, values in [0, 1]; both (B, C, H, W)
Sampler = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]
#: log p(x_d = k | x_<d) for every level: (B, C, K, H, W)
LogProbs = Callable[[Tensor], Tensor]


def completion_method(mask: Tensor, particles: int) -> str:
    """What the task rows record as the method for this mask."""
    if is_raster_prefix(mask):
        return "raster-prefix exact"
    return f"importance resampling, K={particles} ancestral proposals weighted by the known sub-pixels' likelihood"


def known_log_weights(log_probs: LogProbs, x: Tensor, mask: Tensor, levels: int) -> Tensor:
    """sum over the known sub-pixels of log p(x_d | x_<d) per image: log p(u, k) - log q(u).  ``x`` (B, C, H, W)
    in [0, 1] on the level grid, ``mask`` (B, C, H, W) bool."""
    index = (x * (levels - 1)).round().to(torch.int64).clamp(0, levels - 1)
    lp = log_probs(x).gather(2, index.unsqueeze(2)).squeeze(2)  # (B, C, H, W)
    return (lp.double() * mask.to(torch.float64)).flatten(1).sum(1)


def importance_complete(sample: Sampler, log_probs: LogProbs, known: Tensor, mask: Tensor, levels: int,
                        particles: int, generator: torch.Generator | None) -> Tensor:
    """One draw per image of (approximately, exactly for a prefix mask) p(unknown | known), see the module text.

    ``known`` (n, C, H, W) values in [0, 1] (used where ``mask`` is True), ``mask`` (n, C, H, W) bool."""
    if particles < 1:
        raise ValueError(f"importance resampling needs at least 1 particle, got {particles}")
    if is_raster_prefix(mask) or particles == 1:
        return sample(known, mask, generator)
    n = len(known)
    rep_known = known.repeat_interleave(particles, 0)
    rep_mask = mask.repeat_interleave(particles, 0)
    proposals = sample(rep_known, rep_mask, generator)  # (n K, C, H, W), particle k of image i at i K + k
    logw = known_log_weights(log_probs, proposals, rep_mask, levels).view(n, particles).cpu()
    probs = torch.softmax(logw, dim=1)
    choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # CPU generator, as the sampler's noise
    index = torch.arange(n) * particles + choice
    return proposals[index.to(proposals.device)]


def completion_nfe(unknown_subpixels: int, mask: Tensor, particles: int) -> int:
    """Network evaluations per image: one per unknown sub-pixel, times K plus K scoring passes when resampling."""
    if is_raster_prefix(mask) or particles == 1:
        return unknown_subpixels
    return particles * (unknown_subpixels + 1)
