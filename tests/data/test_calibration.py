"""The calibration data set: its entropy formula against brute force, and the floor against models."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genbench_independent
from genbench.data.calibration import Calibration, PrototypeMixture, calibration_entropy, calibration_mixture


def tiny_mixture(noise: float = 0.45) -> PrototypeMixture:
    """2x2 images, K=3, three overlapping prototypes with unequal weights: H(Z|X) is large, so the MC term matters."""
    protos = np.array([[[0, 1], [2, 2]], [[0, 1], [2, 0]], [[1, 1], [0, 2]]], dtype=np.uint8)[:, None]
    return PrototypeMixture(prototypes=protos, weights=np.array([0.5, 0.3, 0.2]), levels=3, noise=noise)


def test_tiny_log_prob_is_a_distribution():
    mix = tiny_mixture()
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 4, indexing="ij"), -1).reshape(-1, 1, 2, 2)
    assert abs(np.exp(mix.log_prob(grid)).sum() - 1.0) < 1e-12
    # against the definition, term by term: sum_z pi_z prod_d T[mu_zd, x_d]
    t = mix.kernel()
    x = grid[17]
    direct = sum(w * np.prod([t[m, v] for m, v in zip(p.ravel(), x.ravel())]) for w, p in zip(mix.weights, mix.prototypes))
    assert math.isclose(math.exp(mix.log_prob(x[None])[0]), direct, rel_tol=1e-12)


@pytest.mark.parametrize("noise", [0.15, 0.45, 0.9])
def test_entropy_formula_matches_brute_force(noise):
    mix = tiny_mixture(noise)
    exact = mix.entropy_by_enumeration_nats()
    estimate, se = mix.entropy_nats(n_samples=40_000, seed=3)
    h_z_given_x = mix.prior_entropy_nats() + mix.conditional_entropy_nats() - exact
    assert h_z_given_x > 0.05  # the configuration really exercises the estimated term
    assert abs(estimate - exact) < 4 * se + 1e-12, (estimate, exact, se)
    assert se < 0.01


def test_sampler_follows_log_prob():
    """Empirical frequencies of 60 000 draws vs exp(log_prob) over all 81 tiny images (chi-square, 80 dof)."""
    mix = tiny_mixture()
    x, _ = mix.sample(60_000, np.random.Generator(np.random.PCG64(5)))
    codes = (x.reshape(len(x), -1).astype(np.int64) * np.array([27, 9, 3, 1])).sum(1)
    counts = np.bincount(codes, minlength=81)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 4, indexing="ij"), -1).reshape(-1, 1, 2, 2)
    expected = np.exp(mix.log_prob(grid)) * len(x)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 140  # 80 dof: mean 80, sd 12.6; 140 is ~4.7 sd


def test_shipped_configuration_entropy():
    bpd, se = calibration_entropy()
    mix = calibration_mixture()
    closed = (mix.prior_entropy_nats() + mix.conditional_entropy_nats()) / (64 * math.log(2))
    # H(Z|X) >= 0 and tiny here (prototypes differ in >= 18 pixels)
    assert 0 <= closed - bpd < 1e-4 and se < 1e-6
    assert 0.89 < bpd < 0.91


@pytest.fixture(scope="module")
def calibration():
    return Calibration().load()


def test_calibration_splits(calibration):
    d = calibration
    assert d.spec.shape == (1, 8, 8) and d.spec.levels == 4 and d.num_classes == 10
    assert d.sizes == {"train": 20000, "val": 2000, "test": 5000}
    assert d.split_id.startswith("calibration-v1:")
    assert d.entropy_bits_per_dim == calibration_entropy()[0]
    assert int(d.train.max()) == 3
    assert Calibration().load().data_hash == d.data_hash


def test_true_model_on_test_matches_the_entropy(calibration):
    """The generating distribution's own bits/dim on the 5000 test images lies within 4 standard errors of the entropy."""
    mix = calibration_mixture()
    bpd = -mix.log_prob(calibration.test.numpy()) / (64 * math.log(2))
    se = bpd.std(ddof=1) / math.sqrt(len(bpd))
    assert abs(bpd.mean() - calibration.entropy_bits_per_dim) < 4 * se


def test_independent_model_stays_above_the_floor(calibration):
    """The reference model's exact bits/dim on the test split (trained by counting on all of train) >= entropy."""
    spec = calibration.spec
    cls = genbench_independent.IndependentCategorical
    model = cls(cls.Config(), spec)
    x_train = calibration.unit("train")
    for start in range(0, len(x_train), 5000):
        model.train_step(x_train[start : start + 5000])
    with torch.no_grad():
        nats = model.nll(calibration.unit("test")).double()
    bpd = float(spec.bits_per_dim(nats.mean()))
    se = float(spec.bits_per_dim(nats.std() / math.sqrt(len(nats))))
    assert bpd - 3 * se > calibration.entropy_bits_per_dim
    # and it is the product of the exact per-pixel marginals' cross-entropy, up to test noise and
    # the smoothing/estimation error of 20 000 counts (the marginals are known in closed form)
    mix = calibration_mixture()
    protos = mix.prototypes.reshape(10, -1)
    marginals = np.einsum("z,zdk->dk", mix.weights, mix.kernel()[protos])  # (D, K)
    marginal_entropy = float(-(marginals * np.log2(marginals)).sum() / 64)
    assert abs(bpd - marginal_entropy) < 4 * se + 2e-3, (bpd, marginal_entropy, se)
