"""FID (Heusel et al. 2017, eq. 6) on every configured feature extractor, with the real-data floor.

d^2 = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})

Means and covariances are streamed batch by batch in float64 (memory independent of
n; see stats.FeatureStats); the reference (test split) statistics are cached on disk by
the data hash and the extractor's weights.  The value equals torchmetrics'
FrechetInceptionDistance on the same features (tests/metrics check it).  Every row
names the extractor, its weights' sha256, the resize method, n and the reference
split, and the real-data floor (real images outside the test split vs the test split,
same n as the largest sample set, capped by what exists) is always reported beside it.
Each row's ``stderr`` is the bootstrap standard deviation over the rows of both sets (see
bootstrap.py: the value stays the plug-in FID; the bootstrap distribution is centred above it);
a sample row's details add FID / floor (``over_floor``) and the sd of its paired bootstrap ratios.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.display import MetricDisplay, with_floor
from genbench.metrics.extractors import FeatureExtractor
from genbench.metrics.features import FeatureSet, stream_features, tensor_batches
from genbench.metrics.spread import fid_error, fid_over_floor
from genbench.metrics.stats import fid_from_stats


def fid_between(extractor: FeatureExtractor, real: Tensor, fake: Tensor, batch_size: int = 1000) -> float:
    """FID between two sets of images in [0, 1] (N, C, H, W) on ``extractor`` (streamed, nothing cached)."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} real and {len(fake)} generated")
    a = stream_features(extractor, tensor_batches(real, batch_size), keep=False)
    b = stream_features(extractor, tensor_batches(fake, batch_size), keep=False)
    return fid_from_stats(a.stats, b.stats)


def row_provenance(ext: FeatureExtractor, reference: FeatureSet, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``details`` every feature-based row carries."""
    prov = ext.provenance()
    prov.pop("extractor")
    prov.pop("extractor_sha256")
    prov["n_reference"] = reference.n
    prov.update(extra or {})
    return prov


class FID(Metric):
    """FID of every sampler's samples vs the test split, and the real-data floor, per extractor."""

    name = "fid"
    description = "Frechet distance of extractor features vs the test split (streamed float64 stats), with the real-data floor"
    higher_is_better = False
    display = with_floor("fid", MetricDisplay("FID", "quality", direction="lower", per_extractor=True))

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            sets = ctx.compared_sets(ext)
            floor = next((cs for cs in sets if cs.suffix), None)
            floor_value = fid_from_stats(ref.stats, floor.features.stats) if floor else None
            for cs in sets:
                extra = {"source": "validation then train split, seeded choice"} if cs.suffix else {}
                value = fid_from_stats(ref.stats, cs.features.stats)
                se, how = fid_error(ctx, ext, ref, cs)
                if floor is not None and floor_value is not None and not cs.suffix:
                    how.update(fid_over_floor(ctx, ext, ref, cs, value, floor, floor_value))
                rows.append(Measurement(metric="fid" + cs.suffix, value=value, n=cs.features.n, stderr=se,
                                        sampler=cs.sampler, sampling_seed=cs.sampling_seed,
                                        details=row_provenance(ext, ref, {**extra, **how}), **ctx.row_fields(ext, "", False)))
        return rows
