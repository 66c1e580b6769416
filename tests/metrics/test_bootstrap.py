"""Standard errors of the sample metrics: the batched maths against direct computations, and each method's
standard error against the spread over many independent draws (computed here) with a stated tolerance."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.metrics.bootstrap import (
    ReferenceReplicates, binomial_stderr, bootstrap_fids, bootstrap_label_stats, bootstrap_mmd2, bootstrap_moments,
    frechet_distance_batched, group_jackknife, ratio_stderr, jackknife_stderr, kernel_quadratic_forms, kid_stderr, resample_counts,
    std,
)
from genbench.metrics.classes import SampleClasses, entropy_bits
from genbench.metrics.spread import prdc_errors
from genbench.metrics.stats import FeatureStats, fid_from_stats, frechet_distance, kid, poly_mmd2, prdc_of_sets


def _gaussians(seed: int, n: int, m: int, d: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, d, generator=g, dtype=torch.float64)
    fake = torch.randn(m, d, generator=g, dtype=torch.float64) * (1 + shift) + shift
    return real, fake


# ------------------------------------------------------------------ the batched maths equals the direct maths
def test_batched_frechet_equals_the_single_one_also_for_singular_covariances():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(30, 6, generator=g, dtype=torch.float64) * 2),
             (torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64))]  # n < d
    a = [FeatureStats.of(x) for x, _ in pairs]
    b = [FeatureStats.of(y) for _, y in pairs]
    got = frechet_distance_batched(torch.stack([s.mean for s in a]), torch.stack([s.cov for s in a]),
                                   torch.stack([s.mean for s in b]), torch.stack([s.cov for s in b]))
    for i in range(2):
        want = frechet_distance(a[i].mean, a[i].cov, b[i].mean, b[i].cov)
        assert abs(float(got[i]) - want) <= 1e-9 * abs(want)


def test_count_weights_give_the_moments_and_fids_of_the_materialised_resamples():
    real, fake = _gaussians(1, 30, 25, 4, 0.5)
    gen = torch.Generator().manual_seed(3)
    idx_r, idx_f = torch.randint(30, (5, 30), generator=gen), torch.randint(25, (5, 25), generator=gen)
    to_counts = lambda idx, n: torch.stack([torch.bincount(i, minlength=n) for i in idx]).double()  # noqa: E731
    cr, cf = to_counts(idx_r, 30), to_counts(idx_f, 25)
    m = bootstrap_moments(fake, cf)
    fids = bootstrap_fids(fake, cf, reference=ReferenceReplicates(real, cr))
    fixed = bootstrap_fids(fake, cf, fixed_reference=(real.mean(0), torch.cov(real.T)))
    for b in range(5):
        rows = fake[idx_f[b]]
        assert torch.allclose(m.mean[b], rows.mean(0), atol=1e-12) and torch.allclose(m.cov[b], torch.cov(rows.T), atol=1e-12)
        assert abs(float(fids[b]) - fid_from_stats(FeatureStats.of(real[idx_r[b]]), FeatureStats.of(rows))) <= 1e-9
        assert abs(float(fixed[b]) - fid_from_stats(FeatureStats.of(real), FeatureStats.of(rows))) <= 1e-9


def test_kernel_forms_give_the_u_statistic_of_the_materialised_resamples():
    """A replicate's MMD^2 is the unbiased statistic of the resampled multiset (duplicates are distinct positions)."""
    real, fake = _gaussians(2, 12, 12, 3, 0.3)
    gen = torch.Generator().manual_seed(4)
    idx_r, idx_f = torch.randint(12, (4, 12), generator=gen), torch.randint(12, (4, 12), generator=gen)
    cr = torch.stack([torch.bincount(i, minlength=12) for i in idx_r]).double()
    cf = torch.stack([torch.bincount(i, minlength=12) for i in idx_f]).double()
    got = bootstrap_mmd2(kernel_quadratic_forms(real, cr, chunk=5), real, fake, cr, cf)
    for b in range(4):
        assert abs(float(got[b]) - float(poly_mmd2(real[idx_r[b]], fake[idx_f[b]]))) <= 1e-10


def test_delete_one_jackknife_of_a_mean_is_the_textbook_standard_error():
    x = torch.randn(40, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    values = group_jackknife(lambda keep: float(x[keep].mean()), 40, groups=40)
    assert abs(jackknife_stderr(values) - float(x.std() / math.sqrt(40))) <= 1e-12


# ------------------------------------------------------------------ each method against the spread over draws
DRAWS = 60


@pytest.mark.parametrize("shift, low, high", [(0.6, 0.75, 1.25), (0.0, 1.0, 2.5)])
def test_fid_bootstrap_stderr_matches_the_spread_over_independent_draws(shift, low, high):
    """Distributions apart: within 25% (1.13x here).  Identical distributions (FID at its floor, where it is
    quadratic in the noise): the bootstrap over-estimates (1.74x here), so its intervals are conservative."""
    values, errors = [], []
    for i in range(DRAWS):
        real, fake = _gaussians(100 + i, 150, 300, 6, shift)
        values.append(fid_from_stats(FeatureStats.of(real), FeatureStats.of(fake)))
        reps = bootstrap_fids(fake, resample_counts(300, 200, 2 * i), reference=ReferenceReplicates(real, resample_counts(150, 200, 2 * i + 1)))
        errors.append(std(reps))
    ratio = sum(errors) / DRAWS / float(torch.tensor(values).std())
    assert low <= ratio <= high, ratio


@pytest.mark.parametrize("shift, low, high", [(0.6, 0.75, 1.25), (0.0, 1.0, 2.5)])
def test_kid_stderr_matches_the_spread_over_independent_draws(shift, low, high):
    """Apart: within 25% (1.14x here); identical (the degenerate U-statistic): conservative (1.97x here)."""
    values, errors = [], []
    for i in range(DRAWS):
        real, fake = _gaussians(200 + i, 120, 120, 6, shift)
        r = kid(real, fake, subsets=10, subset_size=60, seed=i)
        cr, cf = resample_counts(120, 200, 2 * i), resample_counts(120, 200, 2 * i + 1)
        errors.append(kid_stderr(bootstrap_mmd2(kernel_quadratic_forms(real, cr), real, fake, cr, cf), r.std, r.subsets))
        values.append(r.mean)
    ratio = sum(errors) / DRAWS / float(torch.tensor(values).std())
    assert low <= ratio <= high, ratio


@pytest.mark.parametrize("shift", [0.5, 0.0])
def test_prdc_jackknife_is_conservative_but_not_wildly(shift):
    """The delete-a-group jackknife of the k-NN statistics: between 0.85x and 2x the spread over draws
    (1.12-1.39x with distributions apart, 1.25-1.61x with identical ones, here)."""
    names = ("precision", "recall", "density", "coverage")
    values = {k: [] for k in names}
    errors = {k: [] for k in names}
    for i in range(DRAWS):
        real, fake = _gaussians(300 + i, 120, 120, 4, shift)
        res = prdc_of_sets(real, fake, seed=i).result
        se, how = prdc_errors(real, fake, seed=i)
        assert how["stderr_groups"] == 10
        for k in names:
            values[k].append(getattr(res, k))
            errors[k].append(se[k])
    for k in names:
        ratio = sum(errors[k]) / DRAWS / float(torch.tensor(values[k]).std())
        assert 0.85 <= ratio <= 2.0, (k, ratio)


def test_prdc_errors_need_enough_points():
    real, fake = _gaussians(9, 6, 6, 2, 0.0)  # 6 points: leaving one out leaves k_dc = 5
    se, how = prdc_errors(real, fake, seed=0)
    assert all(v is None for v in se.values()) and how["stderr_method"].startswith("none")


def test_confident_share_stderr_is_binomial_and_matches_the_spread():
    k, n = 4, 400
    gen = torch.Generator().manual_seed(6)
    shares, errors = [], []
    for _ in range(200):
        probs = torch.softmax(torch.randn(n, k, generator=gen) * 3, -1)
        p = float((probs.max(-1).values >= 0.9).double().mean())
        se, *_ = SampleClasses.errors(probs, k, seed=1)
        assert se == binomial_stderr(p, n) == math.sqrt(p * (1 - p) / n)
        shares.append(p)
        errors.append(se)
    assert abs(sum(errors) / len(errors) / float(torch.tensor(shares).std()) - 1) <= 0.15


def test_label_entropy_bootstrap_matches_the_delta_method_and_the_spread():
    """Var(H) ~ (sum p (log2 p)^2 - H^2) / n (Basharin 1959) for the plug-in entropy of n labels."""
    p = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    n = 500
    delta = math.sqrt(float((p * p.log2().square()).sum() - entropy_bits(p).square()) / n)
    gen = torch.Generator().manual_seed(7)
    values, errors = [], []
    for i in range(100):
        labels = torch.multinomial(p, n, replacement=True, generator=gen)
        values.append(float(entropy_bits(torch.bincount(labels, minlength=4).double() / n)))
        errors.append(std(bootstrap_label_stats(labels, 4, entropy_bits, 200, seed=i)))
    mean_se = sum(errors) / len(errors)
    assert abs(mean_se / delta - 1) <= 0.1
    assert abs(mean_se / float(torch.tensor(values).std()) - 1) <= 0.25


def test_ratio_to_the_floor_stderr_against_the_spread_over_draws():
    """FID / floor with both FIDs against the same test split: the delta method on the paired replicates
    (the same resampled reference on both sides) against the spread of the ratio over independent draws of all
    three sets.  The floor's conservative standard error carries over (1.87x here; the replicates' own ratios
    would give 0.49x: their denominators carry the bootstrap's upward bias)."""
    ratios, errors = [], []
    for i in range(DRAWS):
        g = torch.Generator().manual_seed(400 + i)
        real, floor = (torch.randn(n, 6, generator=g, dtype=torch.float64) for n in (150, 300))
        fake = torch.randn(300, 6, generator=g, dtype=torch.float64) * 1.6 + 0.6
        value = fid_from_stats(FeatureStats.of(real), FeatureStats.of(fake))
        floor_value = fid_from_stats(FeatureStats.of(real), FeatureStats.of(floor))
        ratios.append(value / floor_value)
        ref = ReferenceReplicates(real, resample_counts(150, 200, 3 * i))
        reps = bootstrap_fids(fake, resample_counts(300, 200, 3 * i + 1), reference=ref)
        floor_reps = bootstrap_fids(floor, resample_counts(300, 200, 3 * i + 2), reference=ref)
        errors.append(ratio_stderr(value, floor_value, reps, floor_reps))
    ratio = sum(errors) / DRAWS / float(torch.tensor(ratios).std())
    assert 1.0 <= ratio <= 2.5, ratio


def test_ratio_stderr_is_the_delta_method():
    a, b = torch.tensor([1.0, 2.0, 4.0, 3.0], dtype=torch.float64), torch.tensor([2.0, 1.0, 3.0, 5.0], dtype=torch.float64)
    va, vb, cab = float(a.var()), float(b.var()), float(torch.cov(torch.stack([a, b]))[0, 1])
    want = 2 / 4 * math.sqrt(va / 4 + vb / 16 - 2 * cab / 8)
    assert abs(ratio_stderr(2.0, 4.0, a, b) - want) <= 1e-12
