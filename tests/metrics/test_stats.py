"""Golden tests of the feature-set distances against independent references (closed forms, scipy, torchmetrics, brute force)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from genbench.metrics.stats import FeatureStats, fid_from_stats, frechet_distance, kid, kth_nn_radius, poly_mmd2, prdc

REL = 1e-6


def _random_spd(d: int, gen: torch.Generator, cond: float = 50.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    eig = torch.logspace(0, math.log10(cond), d, dtype=torch.float64)
    return q, eig, (q * eig) @ q.T


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The classic reference (pytorch-fid / torch-fidelity): scipy.linalg.sqrtm of S1 S2."""
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_frechet_matches_closed_form_for_gaussians_with_shared_eigenvectors():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T  =>  d^2 = |mu1-mu2|^2 + sum (sqrt a - sqrt b)^2
    gen = torch.Generator().manual_seed(0)
    d = 64
    q, a, s1 = _random_spd(d, gen)
    b = torch.rand(d, generator=gen, dtype=torch.float64) * 5 + 0.1
    s2 = (q * b) @ q.T
    mu1 = torch.randn(d, generator=gen, dtype=torch.float64)
    mu2 = torch.randn(d, generator=gen, dtype=torch.float64)
    exact = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert abs(ours - exact) <= REL * exact


def test_frechet_matches_closed_form_for_scaled_covariance():
    # S2 = c^2 S1  =>  Tr(S1 + S2 - 2 (S1 S2)^{1/2}) = (1 - c)^2 Tr S1, for any (non-commuting-looking) S1
    gen = torch.Generator().manual_seed(1)
    _, _, s1 = _random_spd(32, gen, cond=1e3)
    c = 1.7
    mu = torch.zeros(32, dtype=torch.float64)
    exact = (1 - c) ** 2 * float(s1.trace())
    assert abs(frechet_distance(mu, s1, mu, c * c * s1) - exact) <= REL * exact


def test_frechet_matches_scipy_sqrtm_on_generic_covariances():
    gen = torch.Generator().manual_seed(2)
    d = 48
    x = torch.randn(400, d, generator=gen, dtype=torch.float64) @ torch.randn(d, d, generator=gen, dtype=torch.float64)
    y = torch.randn(300, d, generator=gen, dtype=torch.float64) * 1.3 + 0.2
    a, b = FeatureStats.of(x), FeatureStats.of(y)
    ref = scipy_frechet(a.mean.numpy(), a.cov.numpy(), b.mean.numpy(), b.cov.numpy())
    assert abs(fid_from_stats(a, b) - ref) <= REL * ref


def test_streamed_statistics_equal_numpy_and_do_not_depend_on_batching():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1001, 16, generator=gen, dtype=torch.float64) * 3 + 1e3  # a large offset: the naive sum(xx^T) loses digits
    whole = FeatureStats.of(x, batch_size=10_000)
    pieces = FeatureStats.of(x, batch_size=7)
    np.testing.assert_allclose(whole.mean.numpy(), x.numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.cov.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pieces.cov.numpy(), whole.cov.numpy(), rtol=1e-10, atol=1e-10)
    restored = FeatureStats.from_state(pieces.state())
    assert restored.n == 1001 and torch.equal(restored.m2, pieces.m2)


def test_identical_sets_give_zero_even_when_singular():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(20, 64, generator=gen)  # n < d: singular covariance, the usual small-n Inception case
    a = FeatureStats.of(x)
    assert abs(fid_from_stats(a, FeatureStats.of(x.clone()))) < 1e-8
    y = torch.randn(20, 64, generator=gen)
    assert fid_from_stats(a, FeatureStats.of(y)) > 1.0


class _Identity(nn.Module):
    """Features in, features out: torchmetrics then measures the very features we measure."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def test_fid_equals_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    gen = torch.Generator().manual_seed(5)
    d = 32
    x = torch.randn(500, d, generator=gen, dtype=torch.float64)
    y = torch.randn(400, d, generator=gen, dtype=torch.float64) @ (torch.eye(d, dtype=torch.float64) + 0.1 * torch.randn(d, d, generator=gen, dtype=torch.float64)) + 0.3
    tm = FrechetInceptionDistance(feature=_Identity(d)).double()
    for i in range(0, 500, 128):
        tm.update(x[i : i + 128], real=True)
    for i in range(0, 400, 128):
        tm.update(y[i : i + 128], real=False)
    ref = float(tm.compute())
    ours = fid_from_stats(FeatureStats.of(x), FeatureStats.of(y))
    assert abs(ours - ref) <= 1e-6 * ref


def test_kid_equals_torchmetrics_with_the_same_subsets():
    from torchmetrics.image.kid import KernelInceptionDistance

    gen = torch.Generator().manual_seed(6)
    x = torch.randn(120, 24, generator=gen, dtype=torch.float64)
    y = torch.randn(90, 24, generator=gen, dtype=torch.float64) * 1.2 + 0.1
    tm = KernelInceptionDistance(feature=_Identity(24), subsets=7, subset_size=50)
    tm.update(x, real=True)
    tm.update(y, real=False)
    torch.manual_seed(11)  # torchmetrics draws its subsets from the global generator
    ref_mean, ref_std = (float(v) for v in tm.compute())
    ours = kid(x, y, subsets=7, subset_size=50, seed=11)
    assert abs(ours.mean - ref_mean) <= 1e-9 * abs(ref_mean)
    assert abs(ours.std - ref_std) <= 1e-9 * abs(ref_std)
    assert (ours.subsets, ours.subset_size) == (7, 50)


def test_poly_mmd2_equals_a_brute_force_double_sum():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(9, 5, generator=gen, dtype=torch.float64) + 0.5
    k = lambda a, b: (float(a @ b) / 5 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert abs(float(poly_mmd2(x, y)) - (xx + yy - 2 * xy)) < 1e-10


def brute_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> tuple[float, float, float, float]:
    """Kynkaanniemi et al. 2019 and Naeem et al. 2020, written out with Python loops."""
    def dist(a, b):
        return float(np.sqrt(((a - b) ** 2).sum()))

    def kth(points, k):
        return [sorted(dist(p, q) for j, q in enumerate(points) if j != i)[k - 1] for i, p in enumerate(points)]

    r_real, r_fake, r_dc = kth(real, k_pr), kth(fake, k_pr), kth(real, k_dc)
    precision = np.mean([any(dist(f, r) <= rad for r, rad in zip(real, r_real)) for f in fake])
    recall = np.mean([any(dist(r, f) <= rad for f, rad in zip(fake, r_fake)) for r in real])
    density = sum(dist(f, r) < rad for f in fake for r, rad in zip(real, r_dc)) / (k_dc * len(fake))
    coverage = np.mean([any(dist(f, r) < rad for f in fake) for r, rad in zip(real, r_dc)])
    return float(precision), float(recall), float(density), float(coverage)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prdc_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(40, 6))
    fake = rng.normal(size=(35, 6)) + 0.8
    res = prdc(torch.from_numpy(real), torch.from_numpy(fake), k_pr=3, k_dc=5)
    ref = brute_prdc(real, fake, 3, 5)
    got = (res.precision, res.recall, res.density, res.coverage)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert 0 < res.precision < 1 and 0 < res.recall < 1  # the data are chosen so neither is trivially 0 or 1


def test_prdc_of_a_set_with_itself_and_of_disjoint_sets():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    same = prdc(x, x.clone())
    assert same.precision == 1.0 and same.recall == 1.0 and same.coverage == 1.0
    far = prdc(x, x + 100.0)
    assert far.precision == 0.0 and far.recall == 0.0 and far.density == 0.0 and far.coverage == 0.0


def test_kth_nn_radius_excludes_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    np.testing.assert_allclose(kth_nn_radius(x, 1).numpy(), [1, 1, 2, 4])
    np.testing.assert_allclose(kth_nn_radius(x, 2).numpy(), [3, 2, 3, 6])


def test_singular_and_regular_paths_agree_with_scipy():
    """Cholesky path (S2 full rank) and square-root path (S2 singular: n < d) against scipy.linalg.sqrtm."""
    gen = torch.Generator().manual_seed(9)
    d = 24
    full = FeatureStats.of(torch.randn(200, d, generator=gen, dtype=torch.float64) * 0.7 + 0.1)
    low = FeatureStats.of(torch.randn(12, d, generator=gen, dtype=torch.float64))  # rank 11 < d
    for a, b in ((low, full), (full, low)):
        ref = scipy_frechet(a.mean.numpy(), a.cov.numpy(), b.mean.numpy(), b.cov.numpy())
        assert abs(fid_from_stats(a, b) - ref) <= 1e-6 * ref




def test_streamed_statistics_equal_the_closed_form_and_end_on_the_host():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1000, 7, generator=g) * torch.linspace(0.5, 3, 7) + 2
    stats = FeatureStats.of(f, batch_size=128)
    x = f.double()
    torch.testing.assert_close(stats.mean, x.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(stats.cov, torch.cov(x.T), rtol=1e-12, atol=1e-12)
    assert stats.mean.device.type == "cpu" and stats.m2.dtype == torch.float64
