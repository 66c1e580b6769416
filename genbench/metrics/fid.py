"""FID (Heusel et al. 2017, eq. 6) through torchmetrics, on a named feature extractor.

d^2 = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})

torchmetrics' FrechetInceptionDistance accumulates feature sums in float64 (memory
independent of n) and is given our extractor module in place of Inception.
Every row names the extractor, its weights' sha256, n and the reference split,
and the real-data floor (real images outside the test split vs the test split,
same n as the samples, capped by what exists) is always reported beside it.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.extractors import FeatureExtractor


def fid_between(extractor: FeatureExtractor, real: Tensor, fake: Tensor, batch_size: int = 1000) -> float:
    """FID between two sets of images in [0, 1] (N, C, H, W) on ``extractor``."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} real and {len(fake)} generated")
    metric = FrechetInceptionDistance(feature=extractor.module, normalize=True, reset_real_features=True)
    dev = next(extractor.module.parameters()).device
    metric = metric.to(dev)
    with torch.no_grad():
        for i in range(0, len(real), batch_size):
            metric.update(real[i : i + batch_size].to(dev), real=True)
        for i in range(0, len(fake), batch_size):
            metric.update(fake[i : i + batch_size].to(dev), real=False)
        return float(metric.compute())


class FID(Metric):
    """FID of every sampler's samples vs the test split, and the real-data floor."""

    name = "fid"
    description = "Frechet distance of extractor features vs the test split (torchmetrics), with the real-data floor"
    higher_is_better = False
    extractor_name = "classifier"

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        ext = ctx.extractor(self.extractor_name)
        spec = ctx.data.spec
        test = ctx.data.unit("test")
        common = dict(
            unit="", higher_is_better=False, extractor=ext.name, extractor_sha256=ext.sha256,
            reference=f"test ({ctx.data.split_id})",
        )
        rows = []
        for s in ctx.samples:
            rows.append(Measurement(
                metric="fid", value=fid_between(ext, test, spec.to_unit(s.levels)), n=s.n, sampler=s.label,
                details={"extractor_test_accuracy": ext.accuracy}, **common,
            ))
        pool = ctx.data.reference_pool()
        n_floor = min(max(s.n for s in ctx.samples), len(pool))
        perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(ctx.seed))[:n_floor]
        rows.append(Measurement(
            metric="fid_floor", value=fid_between(ext, test, spec.to_unit(pool[perm])), n=n_floor, sampler="real data",
            details={"source": "validation then train split", "extractor_test_accuracy": ext.accuracy}, **common,
        ))
        return rows
