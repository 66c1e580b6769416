"""Scores of a restoration task (one ``Measurement`` each, like the sample metrics).

- ``mse_unknown`` / ``psnr_unknown``: mean squared error over the unknown sub-pixels in [0, 1] units against
  the truth, pooled over images, and PSNR = 10 log10(1 / MSE) (infinite for a perfect restoration); for
  denoising and colourisation every sub-pixel is "unknown".  ``mse_known`` / ``psnr_known``: the same over the
  known sub-pixels (how well the model keeps what it was given; 0 / inf when kept exactly).  The MSE's stderr
  is the sd of the per-image errors / sqrt(n); the PSNR's its delta-method image, 10 se(MSE) / (MSE ln 10).
- ``*_retrieval`` (completion tasks): ``class_agreement``, ``mse_unknown`` and ``psnr_unknown`` of the retrieval
  reference (``genbench.tasks.retrieval``: the unknown region from the training image nearest on the known
  pixels), the scale a model's completion is read against.
- ``class_agreement``: share of restorations the data set's classifier (``metrics.extractors``, the same one
  the sample metrics use) labels with the original's label; ``class_agreement_floor`` the same on the truth,
  i.e. the classifier's accuracy on these images (what a perfect restoration scores).  Binomial stderr.
- ``restored_fid``: FID of the restorations against the test split on each extractor; ``restored_fid_floor``:
  of the uncorrupted originals (the same images) against the test split.
- ``diversity``: mean pairwise RMS distance per sub-pixel between the completions of one input, averaged over
  inputs (0 for a deterministic method).
- ``seconds_per_image`` and ``nfe`` (network evaluations per image, where the model says).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genbench.metrics.base import Measurement

__all__ = ["class_agreement", "diversity", "psnr", "region_errors"]


def region_errors(truth: Tensor, restored: Tensor, region: Tensor) -> Tensor:
    """Per-image MSE over the sub-pixels where ``region`` (bool, broadcastable) is True; NaN where it is empty."""
    region = region.expand_as(truth).to(truth.dtype)
    sq = (restored.to(truth.dtype) - truth) ** 2 * region
    count = region.flatten(1).sum(1)
    return sq.flatten(1).sum(1) / count.where(count > 0, torch.full_like(count, float("nan")))


def psnr(mse: float) -> float:
    """10 log10(1 / MSE) for images in [0, 1]; inf at MSE = 0."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def diversity(completions: Tensor) -> float:
    """Mean pairwise RMS distance per sub-pixel between k completions of each input: ``completions`` (k, n, ...)."""
    k = completions.shape[0]
    if k < 2:
        return float("nan")
    flat = completions.flatten(2).double()
    total, pairs = 0.0, 0
    for i in range(k):
        for j in range(i + 1, k):
            total += float(((flat[i] - flat[j]) ** 2).mean(-1).sqrt().mean())
            pairs += 1
    return total / pairs


def class_agreement(probs: Tensor, labels: Tensor) -> tuple[float, float]:
    """(share of argmax labels equal to ``labels``, binomial stderr)."""
    agree = (probs.argmax(-1) == labels.to(torch.int64)).double()
    p = float(agree.mean())
    return p, math.sqrt(max(p * (1 - p), 0.0) / len(agree))


def error_rows(truth: Tensor, restored: Tensor, known: Tensor, details: dict[str, Any]) -> list[Measurement]:
    """mse/psnr on the unknown and on the known region (no rows for an empty region)."""
    rows = []
    for suffix, region in (("unknown", ~known), ("known", known)):
        per_image = region_errors(truth, restored, region)
        per_image = per_image[~per_image.isnan()]
        if len(per_image) == 0:
            continue
        mse = float(per_image.mean())
        se = float(per_image.std() / math.sqrt(len(per_image))) if len(per_image) > 1 else None
        rows.append(Measurement(f"mse_{suffix}", mse, "[0,1]^2", False, n=len(per_image), stderr=se, details=details))
        # delta method: d PSNR / d MSE = -10 / (MSE ln 10), so se(PSNR) = 10 se(MSE) / (MSE ln 10)
        psnr_se = 10.0 * se / (mse * math.log(10)) if se is not None and mse > 0 else None
        rows.append(Measurement(f"psnr_{suffix}", psnr(mse), "dB", True, n=len(per_image), stderr=psnr_se,
                                details=details))
    return rows
