"""What the data set's classifier sees in the samples: confidence and class coverage (mode collapse).

Standard errors: the confident share is a mean of n independent 0/1 outcomes, so sqrt(p(1-p)/n) (exact);
the label entropy and the rarest class's share are functions of the label histogram, so the bootstrap over
the samples' labels (bootstrap.py).
"""
from __future__ import annotations

import math

import torch

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.bootstrap import RESAMPLES, binomial_stderr, bootstrap_label_stats, derived_seed, std
from genbench.metrics.display import MetricDisplay, with_floor

CONFIDENCE = 0.9
BINOMIAL = "binomial sqrt(p(1-p)/n)"
LABEL_BOOTSTRAP = "bootstrap over the samples' predicted labels: sd of the replicates"


def entropy_bits(shares: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of class-share vectors (..., K), 0 log 0 = 0."""
    logs = torch.where(shares > 0, shares.log2(), torch.zeros_like(shares))
    return -(shares * logs).sum(-1)


class SampleClasses(Metric):
    """Share of samples the classifier labels with confidence >= 0.9; label entropy; rarest class share."""

    name = "sample_classes"
    description = "classifier view of samples: share with confidence >= 0.9, class-label entropy (bits), rarest class share"
    display = {
        **with_floor("confident_share", MetricDisplay("confident share", "quality", direction="higher")),
        **with_floor("class_entropy", MetricDisplay("class entropy (bits)", "quality", direction="higher")),
        **with_floor("min_class_share", MetricDisplay("rarest class share", "quality", direction="higher")),
    }

    def applies_to(self, model) -> bool:  # needs labelled data, checked in compute
        return True

    @staticmethod
    def describe(probs: torch.Tensor, k: int) -> tuple[float, float, float]:
        """(share with max probability >= 0.9, entropy of the predicted labels in bits, rarest label share)."""
        conf, label = probs.max(-1)
        share = torch.bincount(label, minlength=k).double() / len(label)
        nz = share[share > 0]
        return float((conf >= CONFIDENCE).double().mean()), float(-(nz * nz.log2()).sum()), float(share.min())

    @staticmethod
    def errors(probs: torch.Tensor, k: int, seed: int) -> tuple[float, float, float, int]:
        """Standard errors of ``describe``'s three numbers: binomial for the confident share, the bootstrap
        over the samples' labels (``bootstrap.RESAMPLES`` replicates) for the entropy and the rarest share."""
        conf, label = probs.max(-1)
        p = float((conf >= CONFIDENCE).double().mean())
        shares = lambda s: torch.stack([entropy_bits(s), s.amin(-1)], -1)  # noqa: E731
        reps = bootstrap_label_stats(label, k, shares, RESAMPLES, seed)
        return binomial_stderr(p, len(label)), std(reps[:, 0]), std(reps[:, 1]), len(reps)

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        if "classifier" not in ctx.extractor_names:
            return []  # the classifier is trained on demand; skip where the run chose other extractors
        ext = ctx.extractor("classifier")
        if ext.accuracy is None:
            return []
        k = int(ctx.data.num_classes or 10)
        common = dict(extractor=ext.name, extractor_sha256=ext.sha256)
        # the same statistics on real test images (never seen by the classifier): what a perfect model scores
        sets = [(s.label, s.n, ctx.data.spec.to_unit(s.levels), "", s.sampling_seed) for s in ctx.samples]
        sets.append(("real data", len(ctx.data.test), ctx.data.unit("test"), "_floor", 0))
        rows = []
        for label, n, images, suffix, sampling_seed in sets:
            probs = ext.probabilities(images)
            confident, entropy, rarest = self.describe(probs, k)
            se_conf, se_entropy, se_rarest, b = self.errors(probs, k, derived_seed(ctx.seed, "classes", label, sampling_seed))
            boot = {"stderr_method": LABEL_BOOTSTRAP, "stderr_resamples": b}
            ref = {**common, "sampling_seed": sampling_seed, **({"reference": f"test ({ctx.data.split_id})"} if suffix else {})}
            rows += [
                Measurement("confident_share" + suffix, confident, "fraction", True, n=n, stderr=se_conf, sampler=label,
                            details={"threshold": CONFIDENCE, "stderr_method": BINOMIAL}, **ref),
                Measurement("class_entropy" + suffix, entropy, "bits", True, n=n, stderr=se_entropy, sampler=label,
                            details={"max": math.log2(k), **boot}, **ref),
                Measurement("min_class_share" + suffix, rarest, "fraction", True, n=n, stderr=se_rarest, sampler=label,
                            details={"classes": k, **boot}, **ref),
            ]
        return rows
