"""The standard errors the sample metrics write into their rows, on a cell's features (methods: bootstrap.py).

Resampling is seeded from the cell's seed and the compared set's name (sampler, sampling seed), never from the
global random state.  A reference set's replicates (the test split's rows resampled) are drawn once per cell and
extractor and shared by every compared set and by FID and KID (common random numbers), so the reference's
resampling costs once per cell.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genbench.metrics.base import ComparedSet, EvalContext
from genbench.metrics.bootstrap import (
    JACKKNIFE_GROUPS, ReferenceReplicates, bootstrap_fids, bootstrap_mmd2, derived_seed, group_jackknife,
    jackknife_stderr, kernel_quadratic_forms, kid_stderr, ratio_stderr, resample_counts, resamples_for, std,
)
from genbench.metrics.extractors import FeatureExtractor
from genbench.metrics.features import FeatureSet
from genbench.metrics.stats import DC_K, PR_K, KIDResult, prdc, prdc_subsets

FID_METHOD = ("bootstrap over the feature rows of both sets: sd of the replicates' FIDs (the value is the plug-in "
              "FID of all rows; the replicates' mean lies above it)")
KID_METHOD = ("sqrt(bootstrap variance of the full-set unbiased MMD^2 (rows of both sets resampled) "
              "+ std_over_subsets^2 / subsets)")
PRDC_METHOD = "delete-a-group jackknife: both sets cut into groups (index mod groups), one left out at a time"
PAIRED_METHOD = "bootstrap sd over paired replicates (the same resampled test split for the samples and the floor)"
RATIO_METHOD = ("delta method with the bootstrap variances and covariance of paired replicates (the same resampled "
                "test split for the samples and the floor)")
FIXED_REFERENCE_METHOD = ("bootstrap over the samples' feature rows, the training split held fixed: sd of the "
                          "replicates' FIDs (the value is the plug-in FID of all rows)")


def _counts(ctx: EvalContext, ext: FeatureExtractor, n: int, *key: object) -> Tensor:
    """Drawn on the CPU (the same counts on every device), used on the cell's device."""
    return resample_counts(n, resamples_for(ext.dims), derived_seed(ctx.seed, ext.name, n, *key)).to(ctx.device)


def reference_replicates(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, split: str = "test") -> ReferenceReplicates:
    """The reference split's bootstrap replicates for this cell and extractor (built once)."""
    def build() -> ReferenceReplicates:
        return ReferenceReplicates(_features(ref, ctx.device), _counts(ctx, ext, ref.n, "reference", split))

    return ctx.memo((ext.name, "reference-replicates", split), build)


def compared_counts(ctx: EvalContext, ext: FeatureExtractor, cs: ComparedSet) -> Tensor:
    """The resampling of one compared set's rows (the same for FID, KID and fid_train: paired replicates)."""
    return ctx.memo((ext.name, "compared-counts", cs.sampler, cs.sampling_seed, cs.features.n),
                    lambda: _counts(ctx, ext, cs.features.n, "compared", cs.sampler, cs.sampling_seed))


def _features(fs: FeatureSet, device: torch.device) -> Tensor:
    if fs.features is None:
        raise ValueError("a standard error needs the feature rows, but only statistics were kept")
    return fs.features.to(device, torch.float64)


def fid_replicates(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet) -> Tensor:
    """(B,) bootstrap FIDs of one compared set against the test split, both resampled."""
    return ctx.memo((ext.name, "fid-replicates", cs.sampler, cs.sampling_seed, cs.features.n), lambda: bootstrap_fids(
        _features(cs.features, ctx.device), compared_counts(ctx, ext, cs), reference=reference_replicates(ctx, ext, ref)))


def fid_error(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet) -> tuple[float, dict[str, Any]]:
    """FID's standard error and the details that say how it was estimated."""
    reps = fid_replicates(ctx, ext, ref, cs)
    return std(reps), {"stderr_method": FID_METHOD, "stderr_resamples": len(reps)}


def kid_replicates(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet) -> Tensor:
    """(B,) bootstrap full-set unbiased MMD^2 of one compared set against the test split, both resampled."""
    def build() -> Tensor:
        boot = reference_replicates(ctx, ext, ref)
        forms = ctx.memo((ext.name, "kid-reference-forms"), lambda: kernel_quadratic_forms(boot.features, boot.counts))
        return bootstrap_mmd2(forms, boot.features, _features(cs.features, ctx.device), boot.counts,
                              compared_counts(ctx, ext, cs))

    return ctx.memo((ext.name, "kid-replicates", cs.sampler, cs.sampling_seed, cs.features.n), build)


def kid_error(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet,
              result: KIDResult) -> tuple[float, dict[str, Any]]:
    """KID's standard error (the data's bootstrap variance plus the subsets' Monte-Carlo variance) and details."""
    reps = kid_replicates(ctx, ext, ref, cs)
    se = kid_stderr(reps, result.std, result.subsets)
    return se, {"stderr_method": KID_METHOD, "stderr_resamples": len(reps), "stderr_bootstrap": std(reps),
                "stderr_subsets": result.std / result.subsets**0.5}


def fid_over_floor(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet, value: float,
                   floor: ComparedSet, floor_value: float) -> dict[str, Any]:
    """FID / its real-data floor and its standard error by the delta method on the paired replicates (the same
    resampled test split on both sides, so their positive correlation is kept: tighter than treating them as
    independent; bootstrap.ratio_stderr)."""
    if not floor_value:
        return {}
    reps, floor_reps = fid_replicates(ctx, ext, ref, cs), fid_replicates(ctx, ext, ref, floor)
    return {"over_floor": value / floor_value, "over_floor_stderr": ratio_stderr(value, floor_value, reps, floor_reps),
            "over_floor_stderr_method": RATIO_METHOD}


def kid_minus_floor(ctx: EvalContext, ext: FeatureExtractor, ref: FeatureSet, cs: ComparedSet, result: KIDResult,
                    floor: ComparedSet, floor_result: KIDResult) -> dict[str, Any]:
    """KID minus its floor and sqrt(var of the paired bootstrap differences + both subsets' Monte-Carlo variances)."""
    diff = kid_replicates(ctx, ext, ref, cs) - kid_replicates(ctx, ext, ref, floor)
    mc = result.std**2 / result.subsets + floor_result.std**2 / floor_result.subsets
    return {"minus_floor": result.mean - floor_result.mean, "minus_floor_stderr": (std(diff) ** 2 + mc) ** 0.5,
            "minus_floor_stderr_method": PAIRED_METHOD}


def prdc_errors(reference: Tensor, compared: Tensor, seed: int, groups: int = JACKKNIFE_GROUPS,
                k_pr: int = PR_K, k_dc: int = DC_K) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Jackknife standard errors of precision, recall, density and coverage on the sets ``prdc_of_sets``
    compares (the same subsets), and the details.  With fewer points than groups, each group is one point
    (the delete-one jackknife); None when a left-out group would leave k_dc or fewer points."""
    real, fake = prdc_subsets(reference, compared, seed, k_dc)
    m = len(fake)
    groups = min(groups, m)
    if m - -(-m // groups) <= k_dc:
        return {k: None for k in ("precision", "recall", "density", "coverage")}, {"stderr_method": "none: too few points"}
    results = group_jackknife(lambda keep: prdc(real[keep], fake[keep], k_pr, k_dc), m, groups)
    errors = {k: jackknife_stderr([getattr(r, k) for r in results]) for k in ("precision", "recall", "density", "coverage")}
    return errors, {"stderr_method": PRDC_METHOD, "stderr_groups": groups}
