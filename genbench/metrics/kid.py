"""KID (Binkowski et al. 2018) and precision/recall/density/coverage, on the same cached features as FID.

KID: unbiased MMD^2 with the cubic polynomial kernel, torchmetrics' estimator, mean over
``subsets`` random subsets of ``subset_size`` (both recorded; the size is capped by the
smaller set).  Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage
(Naeem et al. 2020, k=5) compare equal-sized sets: the first m samples against m test
images, m = min(number of samples, test size).  Each metric has a real-data floor row
("<metric>_floor", sampler "real data"): real images outside the test split in place of samples.
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.fid import row_provenance
from genbench.metrics.stats import DC_K, PR_K, kid, prdc

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def _subset(x: Tensor, m: int, seed: int) -> Tensor:
    if len(x) <= m:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:m]]


class KID(Metric):
    """Kernel Inception Distance of every sampler's samples vs the test split, and its real-data floor."""

    name = "kid"
    description = f"KID (cubic polynomial kernel MMD^2, {KID_SUBSETS} subsets of <= {KID_SUBSET_SIZE}) vs the test split, with floor"
    higher_is_better = False

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            for label, suffix, fs in ctx.compared_sets(ext):
                r = kid(ref.features, fs.features, KID_SUBSETS, KID_SUBSET_SIZE, seed=ctx.seed)
                rows.append(Measurement(metric="kid" + suffix, value=r.mean, n=fs.n, sampler=label, details=row_provenance(
                    ext, ref, {"subsets": r.subsets, "subset_size": r.subset_size, "std_over_subsets": r.std,
                               "subset_seed": r.seed, "kernel": "(x.y/d + 1)^3"}), **ctx.row_fields(ext, "", False)))
        return rows


class PRDCMetric(Metric):
    """Precision, recall (k=3), density and coverage (k=5) of samples vs the test split, and their floors."""

    name = "prdc"
    description = f"precision/recall (Kynkaanniemi 2019, k={PR_K}), density/coverage (Naeem 2020, k={DC_K}) vs the test split"
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            common = ctx.row_fields(ext, "fraction", True)
            for label, suffix, fs in ctx.compared_sets(ext, min_floor=DC_K + 1):
                m = min(fs.n, ref.n)
                if m <= DC_K:
                    continue
                real = _subset(ref.features, m, ctx.seed)
                res = prdc(real, fs.features[:m])
                details = row_provenance(ext, ref, {"n_real": m, "n_generated": m, "k_pr": res.k_pr, "k_dc": res.k_dc})
                for metric in ("precision", "recall", "density", "coverage"):
                    rows.append(Measurement(metric=metric + suffix, value=getattr(res, metric), n=m, sampler=label,
                                            details=details, **common))
        return rows
