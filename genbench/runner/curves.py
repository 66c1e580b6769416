"""Sample metrics during training (``config.sample_every``): how FID and friends move with the steps.

Every ``sample_every`` steps the runner draws ``n_samples`` with each sampler setting (sampling seed 0,
the generators the final draw uses) and scores them against the test split with the run's first feature
extractor, by the same functions the final rows use: FID (``stats.fid_from_stats``), KID (``stats.kid``)
and precision/recall/density/coverage (``stats.prdc_of_sets``).  The scores go into ``curves.csv`` as
columns ``<metric>:<sampler>``, e.g. ``fid:DDIM-50``.
"""
from __future__ import annotations

from genbench.metrics.base import EvalContext, SampleSet
from genbench.metrics.features import stream_features, tensor_batches
from genbench.metrics.kid import KID_SUBSET_SIZE, KID_SUBSETS
from genbench.metrics.stats import DC_K, fid_from_stats, kid, prdc_of_sets
from genbench.model import ModelConfig
from genbench.runner.sampling import draw_samples
from genbench.runner.training import SampleScorer


def sample_scores(ctx: EvalContext, samples: list[SampleSet], extractor: str) -> dict[str, float]:
    """FID, KID, precision, recall, density and coverage of every sample set vs the test split of ``ctx``."""
    ext = ctx.extractor(extractor)
    ref = ctx.reference_features(ext)
    out: dict[str, float] = {}
    for s in samples:
        fs = stream_features(ext, tensor_batches(ctx.data.spec.to_unit(s.levels), 4 * ext.batch_size), keep=True)
        out[f"fid:{s.label}"] = fid_from_stats(ref.stats, fs.stats)
        out[f"kid:{s.label}"] = kid(ref.features, fs.features, KID_SUBSETS, KID_SUBSET_SIZE, seed=ctx.seed).mean
        if min(fs.n, ref.n) > DC_K:
            res = prdc_of_sets(ref.features, fs.features, ctx.seed).result
            for metric in ("precision", "recall", "density", "coverage"):
                out[f"{metric}:{s.label}"] = getattr(res, metric)
    return out


def sample_scorer(ctx: EvalContext, config: ModelConfig, extractor: str) -> SampleScorer:
    """A zero-argument function for ``Trainer(sample_scorer=...)``: draw with ``ctx.model``, then
    ``sample_scores`` (``ctx`` keeps the extractor and the test split's features between calls)."""

    def score() -> dict[str, float]:
        samples = draw_samples(ctx.model, ctx.data, config, ctx.seed, ctx.device, sampling_seeds=1)
        return sample_scores(ctx, samples, extractor)

    return score
