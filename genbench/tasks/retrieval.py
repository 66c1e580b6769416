"""The retrieval reference of a completion task: fill the unknown region from the training image that agrees best
with the known pixels (nearest neighbour in squared error over the known sub-pixels; the non-parametric scene
completion of Hays & Efros 2007, with the training split as the "scene database").

It needs no model, so it is the same for every cell of a data set: a scale for the task's scores.  A model's
completion that keeps the class less often than retrieval does has learned less about the conditional than a
lookup table of 1,197 digits; where retrieval itself stays well below the classifier's accuracy, the known
region is ambiguous and no sampler of the true conditional can reach the accuracy either (retrieval picks one
plausible completion, a sampler draws among them).  Completion tasks only (inpaint, outpaint: a known mask);
denoising and colourisation have no known sub-pixels to match on.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["known_distances", "nearest_known", "retrieval_complete"]


def known_distances(observed: Tensor, known: Tensor, pool: Tensor, chunk: int = 256) -> Iterator[Tensor]:
    """Squared distances over the known sub-pixels, ``sum_known (observed - pool_j)^2``, from each ``observed``
    (n, C, H, W) to every ``pool`` image (m, C, H, W): (chunk, m) float64 blocks in the order of ``observed``.
    ``known`` (n, 1 or C, H, W)."""
    mask = known.expand_as(observed).flatten(1).to(torch.float64)
    obs = (observed.flatten(1).to(torch.float64) * mask)
    flat = pool.flatten(1).to(torch.float64)
    squares = (flat * flat).T
    for i in range(0, len(obs), chunk):
        o, w = obs[i : i + chunk], mask[i : i + chunk]
        # sum_k w_k (o_k - p_k)^2 = sum w o^2 - 2 sum w o p + sum w p^2   (w in {0,1}, o already masked)
        yield (o * o).sum(1, keepdim=True) - 2.0 * o @ flat.T + w @ squares


def nearest_known(observed: Tensor, known: Tensor, pool: Tensor, chunk: int = 256) -> Tensor:
    """Index into ``pool`` (m, C, H, W) of the image closest to each ``observed`` (n, C, H, W) over its known
    sub-pixels: argmin_j sum_known (observed - pool_j)^2 (ties: the lowest index).  ``known`` (n, 1 or C, H, W)."""
    return torch.cat([dist.argmin(1) for dist in known_distances(observed, known, pool, chunk)])


def retrieval_complete(observed: Tensor, known: Tensor, pool: Tensor) -> Tensor:
    """The completions: the known sub-pixels of ``observed``, the unknown ones from the nearest pool image."""
    nearest = pool[nearest_known(observed, known, pool)].to(observed.dtype)
    return torch.where(known.expand_as(observed), observed, nearest)
