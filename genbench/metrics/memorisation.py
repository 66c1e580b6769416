"""Memorisation and novelty: are the samples copies of the training images, or closer to them than new real
images are?

An FID at the real-data floor cannot tell a model that learnt the distribution from one that replays its
training set.  Three views, for every sampler setting, against the TRAINING split:

- ``exact_copies`` (pixel space, at the data's K levels): the share of samples identical to some training
  image.  Its floor row (``exact_copies_floor``) is the same share for the validation split: the data's own
  duplicate rate.
- ``closer_than_p5`` (in pixel space, ``extractor`` "", and in every configured extractor's feature space):
  d(x) = min over training images t of ||x - t||_2 (pixels as k/(K-1)); q5 = the 5th percentile (linear
  interpolation) of d over real test images (up to ``MAX_REFERENCE``, a seeded choice); the row is the
  share of samples with d(x) < q5.  Without memorisation a sample is as far from the training set as a new
  real image, so the share is about ``EXPECTED`` = 0.05 (details: ``expected_share`` and
  ``expected_stderr`` = sqrt(0.05 * 0.95 * (1/n + 1/n_test)), the spread of the share for samples drawn like
  test images, the percentile's own noise included; the row's ``stderr`` is the binomial sqrt(p(1-p)/n)
  with the threshold held fixed).  A share far above 0.05 means samples sit closer to the training images
  than real data does; the floor row scores the validation split (never trained on) the same way.
- ``fid_train`` (per extractor): FID of the samples against the training split, beside FID against the test
  split; ``details["gap"]`` is fid - fid_train (the generalisation gap; a copying model is much closer to
  its training set) with ``details["gap_stderr"]``, the bootstrap standard deviation of the paired
  replicates (the same resampled samples on both sides).  ``stderr``: the bootstrap over the samples' rows
  with the training split held fixed (it is the set memorisation is measured against).

At most ``MAX_QUERIES`` samples (the first; they are independent draws) and validation images are compared.
Nearest neighbours run on the cell's device in blocks (neighbours.py): 1000 samples against Fashion-MNIST's
55,000 training images (784 pixels) are 1000 x 55,000 distances, a few seconds on a CPU.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genbench.metrics.base import ComparedSet, EvalContext, Measurement, Metric
from genbench.metrics.bootstrap import binomial_stderr, bootstrap_fids, derived_seed, std
from genbench.metrics.display import MetricDisplay, with_floor
from genbench.metrics.fid import row_provenance
from genbench.metrics.neighbours import nearest
from genbench.metrics.spread import FIXED_REFERENCE_METHOD, compared_counts, fid_replicates
from genbench.metrics.stats import fid_from_stats

EXPECTED = 0.05
MAX_REFERENCE = 1000
MAX_QUERIES = 2000
FLOOR_SOURCE = "validation split (never trained on)"


def proximity(sample_d: Tensor, test_d: Tensor) -> dict[str, Any]:
    """The closer-than-the-test-p5 share of ``sample_d`` (nearest-training distances) and what it rests on."""
    q5 = float(torch.quantile(test_d.to(torch.float64), EXPECTED))
    n, n_test = len(sample_d), len(test_d)
    return {"share": float((sample_d < q5).double().mean()), "test_p5": q5, "n": n, "n_test": n_test,
            "median": float(sample_d.median()), "test_median": float(test_d.median())}


def _proximity_row(p: dict[str, Any], space: str, sampler: str, suffix: str, sampling_seed: int,
                   fields: dict[str, Any], details: dict[str, Any]) -> Measurement:
    n, n_test = p["n"], p["n_test"]
    return Measurement(
        "closer_than_p5" + suffix, p["share"], "fraction", None, n=n, stderr=binomial_stderr(p["share"], n),
        sampler=sampler, sampling_seed=sampling_seed, details={
            **details, "space": space, "expected_share": EXPECTED,
            "expected_stderr": math.sqrt(EXPECTED * (1 - EXPECTED) * (1 / n + 1 / n_test)),
            "test_p5_distance": p["test_p5"], "median_distance": p["median"], "test_median_distance": p["test_median"],
            "n_test_reference": n_test, "stderr_method": "binomial sqrt(p(1-p)/n), threshold held fixed"},
        **fields)


class Memorisation(Metric):
    """Exact copies of training images, nearness to the training set against real test images, FID vs train."""

    name = "memorisation"
    description = ("samples vs the training split: exact copies (pixels), share closer than the 5th percentile of "
                   "test images' nearest-training distances (pixels and features), FID against the training split")
    display = {
        **with_floor("exact_copies", MetricDisplay("exact copies of training images", "memorisation", direction="lower")),
        **with_floor("closer_than_p5", MetricDisplay("closer to train than test p5 (expected 0.05)", "memorisation",
                                                     per_extractor=True)),
        "fid_train": MetricDisplay("FID vs train split", "memorisation", per_extractor=True),
    }

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        data = ctx.data
        pick = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(derived_seed(ctx.seed, self.name)))
        test_idx = pick[:MAX_REFERENCE].sort().values
        sets = [(s.label, s.levels[:MAX_QUERIES], "", s.sampling_seed) for s in ctx.samples]
        sets.append(("real data", data.val[:MAX_QUERIES], "_floor", 0))
        rows = self._pixels(ctx, sets, test_idx)
        for ext_name in ctx.extractor_names:
            rows += self._features(ctx, ext_name, sets, test_idx)
        return rows

    def _pixels(self, ctx: EvalContext, sets: list, test_idx: Tensor) -> list[Measurement]:
        data = ctx.data
        unit = 1.0 / (data.spec.levels - 1)
        train = data.train
        test_d = nearest(data.test[test_idx], train, ctx.device)[0] * unit
        fields = dict(reference=f"train ({data.split_id})")
        space = f"pixels (levels k/(K-1), K={data.spec.levels})"
        rows = []
        for label, levels, suffix, sampling_seed in sets:
            d = nearest(levels, train, ctx.device)[0] * unit
            copies = float((d == 0).double().mean())
            extra = {"source": FLOOR_SOURCE} if suffix else {}
            rows.append(Measurement(
                "exact_copies" + suffix, copies, "fraction", False, n=len(d), stderr=binomial_stderr(copies, len(d)),
                sampler=label, sampling_seed=sampling_seed, details={
                    **extra, "space": space, "n_train": len(train), "stderr_method": "binomial sqrt(p(1-p)/n)"},
                **fields))
            rows.append(_proximity_row(proximity(d, test_d), space, label, suffix, sampling_seed, fields,
                                       {**extra, "n_train": len(train)}))
        return rows

    def _features(self, ctx: EvalContext, ext_name: str, sets: list, test_idx: Tensor) -> list[Measurement]:
        ext = ctx.extractor(ext_name)
        train = ctx.reference_features(ext, "train")
        test = ctx.reference_features(ext)
        assert train.features is not None and test.features is not None
        test_d = nearest(test.features[test_idx], train.features, ctx.device)[0]
        fields = dict(extractor=ext.name, extractor_sha256=ext.sha256, reference=f"train ({ctx.data.split_id})")
        space = f"{ext.name} features"
        rows = []
        by_label = {(s.label, s.sampling_seed): s for s in ctx.samples}
        for label, _, suffix, sampling_seed in sets:
            if suffix:
                feats = ctx.reference_features(ext, "val")
            else:
                feats = ctx.sample_features(ext, by_label[(label, sampling_seed)])
            assert feats.features is not None
            d = nearest(feats.features[:MAX_QUERIES], train.features, ctx.device)[0]
            details = row_provenance(ext, train, {"source": FLOOR_SOURCE} if suffix else {})
            rows.append(_proximity_row(proximity(d, test_d), space, label, suffix, sampling_seed, fields, details))
            if not suffix and feats.n >= 2:  # a covariance needs two rows
                rows.append(self._fid_train(ctx, ext, train, test, ComparedSet(label, "", feats, sampling_seed), fields))
        return rows

    @staticmethod
    def _fid_train(ctx: EvalContext, ext, train, test, cs: ComparedSet, fields: dict[str, Any]) -> Measurement:
        value = fid_from_stats(train.stats, cs.features.stats)
        assert cs.features.features is not None
        reps = bootstrap_fids(cs.features.features.to(ctx.device, torch.float64), compared_counts(ctx, ext, cs),
                              fixed_reference=(train.stats.mean, train.stats.cov))
        gap_reps = fid_replicates(ctx, ext, test, cs) - reps
        gap = fid_from_stats(test.stats, cs.features.stats) - value
        details = row_provenance(ext, train, {
            "stderr_method": FIXED_REFERENCE_METHOD, "stderr_resamples": len(reps), "gap": gap,
            "gap_meaning": "FID vs test minus FID vs train", "gap_stderr": std(gap_reps),
            "gap_stderr_method": "bootstrap sd of paired replicates (the same resampled samples on both sides)"})
        return Measurement("fid_train", value, "", None, n=cs.features.n, stderr=std(reps), sampler=cs.sampler,
                           sampling_seed=cs.sampling_seed, details=details, **fields)
