"""What the data set's classifier sees in the samples: confidence and class coverage (mode collapse)."""
from __future__ import annotations

import math

import torch

from genbench.metrics.base import EvalContext, Measurement, Metric

CONFIDENCE = 0.9


class SampleClasses(Metric):
    """Share of samples the classifier labels with confidence >= 0.9; label entropy; rarest class share."""

    name = "sample_classes"
    description = "classifier view of samples: share with confidence >= 0.9, class-label entropy (bits), rarest class share"

    def applies_to(self, model) -> bool:  # needs labelled data, checked in compute
        return True

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        ext = ctx.extractor("classifier")
        if ext.accuracy is None:
            return []
        rows = []
        k = int(ctx.data.num_classes or 10)
        common = dict(extractor=ext.name, extractor_sha256=ext.sha256)
        for s in ctx.samples:
            probs = ext.probabilities(ctx.data.spec.to_unit(s.levels))
            conf, label = probs.max(-1)
            share = torch.bincount(label, minlength=k).double() / len(label)
            nz = share[share > 0]
            entropy = float(-(nz * nz.log2()).sum())
            rows += [
                Measurement("confident_share", float((conf >= CONFIDENCE).double().mean()), "fraction", True, n=s.n,
                            sampler=s.label, details={"threshold": CONFIDENCE}, **common),
                Measurement("class_entropy", entropy, "bits", True, n=s.n, sampler=s.label,
                            details={"max": math.log2(k)}, **common),
                Measurement("min_class_share", float(share.min()), "fraction", True, n=s.n, sampler=s.label,
                            details={"classes": k}, **common),
            ]
        return rows
