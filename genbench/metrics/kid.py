"""KID (Binkowski et al. 2018) and precision/recall/density/coverage, on the same cached features as FID.

KID: unbiased MMD^2 with the cubic polynomial kernel, torchmetrics' estimator, mean over
``subsets`` random subsets of ``subset_size`` (both recorded; the size is capped by the
smaller set).  Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage
(Naeem et al. 2020, k=5) compare equal-sized sets: the first m samples against a seeded random
m-subset of the test images, m = min(number of samples, test size) (``stats.prdc_of_sets``, the
rule ``genbench fid --pr`` uses too).  Each metric has a real-data floor row
("<metric>_floor", sampler "real data"): real images outside the test split in place of samples.

Standard errors (bootstrap.py): KID's = sqrt(bootstrap variance of the full-set unbiased MMD^2 + the
subsets' Monte-Carlo variance std_over_subsets^2 / subsets); precision/recall/density/coverage's = the
delete-a-group jackknife over both compared sets.  A sample row's KID details add KID minus its floor
(``minus_floor``) and the sd of the paired bootstrap differences.  KID's magnitude depends on the feature
space (~1e-3 on whitened random-CNN features, ~10 on the classifier's), so the report picks its display factor
per extractor (``display.readable_scale``: x10^3 where the values are ~1e-3) and writes it in the header.
"""
from __future__ import annotations

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.display import MetricDisplay, with_floor
from genbench.metrics.fid import row_provenance
from genbench.metrics.spread import kid_error, kid_minus_floor, prdc_errors
from genbench.metrics.stats import DC_K, PR_K, kid, prdc_of_sets

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class KID(Metric):
    """Kernel Inception Distance of every sampler's samples vs the test split, and its real-data floor."""

    name = "kid"
    description = f"KID (cubic polynomial kernel MMD^2, {KID_SUBSETS} subsets of <= {KID_SUBSET_SIZE}) vs the test split, with floor"
    higher_is_better = False
    display = with_floor("kid", MetricDisplay("KID", "quality", direction="lower", per_extractor=True, auto_scale="kid"))

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            sets = ctx.compared_sets(ext)
            results = [kid(ref.features, cs.features.features, KID_SUBSETS, KID_SUBSET_SIZE, seed=ctx.seed) for cs in sets]
            at_floor = next((i for i, cs in enumerate(sets) if cs.suffix), None)
            for i, cs in enumerate(sets):
                r = results[i]
                se, how = kid_error(ctx, ext, ref, cs, r)
                if at_floor is not None and not cs.suffix:
                    how.update(kid_minus_floor(ctx, ext, ref, cs, r, sets[at_floor], results[at_floor]))
                rows.append(Measurement(metric="kid" + cs.suffix, value=r.mean, n=cs.features.n, stderr=se,
                                        sampler=cs.sampler, sampling_seed=cs.sampling_seed, details=row_provenance(
                    ext, ref, {"subsets": r.subsets, "subset_size": r.subset_size, "std_over_subsets": r.std,
                               "subset_seed": r.seed, "kernel": "(x.y/d + 1)^3", **how}), **ctx.row_fields(ext, "", False)))
        return rows


class PRDCMetric(Metric):
    """Precision, recall (k=3), density and coverage (k=5) of samples vs the test split, and their floors."""

    name = "prdc"
    description = f"precision/recall (Kynkaanniemi 2019, k={PR_K}), density/coverage (Naeem 2020, k={DC_K}) vs the test split"
    higher_is_better = True
    display = {k: v for metric in ("precision", "recall", "density", "coverage")
               for k, v in with_floor(metric, MetricDisplay(metric, "quality", direction="higher", per_extractor=True)).items()}

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            common = ctx.row_fields(ext, "fraction", True)
            for cs in ctx.compared_sets(ext, min_floor=DC_K + 1):
                if min(cs.features.n, ref.n) <= DC_K:
                    continue
                cmp = prdc_of_sets(ref.features, cs.features.features, ctx.seed)
                m, res = cmp.n_each, cmp.result
                errors, how = prdc_errors(ref.features, cs.features.features, ctx.seed)
                details = row_provenance(ext, ref, {"n_real": m, "n_generated": m, "k_pr": res.k_pr, "k_dc": res.k_dc, **how})
                for metric in ("precision", "recall", "density", "coverage"):
                    rows.append(Measurement(metric=metric + cs.suffix, value=getattr(res, metric), n=m, stderr=errors[metric],
                                            sampler=cs.sampler, sampling_seed=cs.sampling_seed, details=details, **common))
        return rows
