"""The random-CNN extractor's whitened features: the whitening's closed form, its record in every row, its cache,
and a readable scale: the real-data floor and the per-pixel baseline 10x apart on digits and on a user .npz."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genbench.metrics.extractors as extractors
from genbench.data.files import NpzDataset
from genbench.metrics.base import EvalContext, SampleSet
from genbench.metrics.extractors import RandomCNNExtractor
from genbench.metrics.whitening import RIDGE, fit_whitening
from genbench_independent import IndependentCategorical


def test_whitened_covariance_is_the_ridge_shrunk_identity():
    """cov(W (f - mu)) = W S W = V diag(lambda / (lambda + eps)) V^T, eps = ridge * mean(lambda)."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64) * 1e-3
    w = fit_whitening(f, ridge=0.1)
    z = (f - w.mean) @ w.matrix
    lam, vec = torch.linalg.eigh(torch.cov(f.T))
    want = (vec * (lam / (lam + 0.1 * lam.mean()))) @ vec.T
    assert torch.allclose(torch.cov(z.T), want, atol=1e-10) and torch.allclose(z.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        fit_whitening(torch.ones(10, 3))


def _independent_samples(data, n: int = 1000) -> torch.Tensor:
    """The per-pixel baseline fitted by counting over the whole training split, then n draws."""
    model = IndependentCategorical(IndependentCategorical.Config(), data.spec)
    model.train_step(data.unit("train"))
    return data.spec.quantise(model.sample(n, generator=torch.Generator().manual_seed(0)))


def _floor_and_baseline(data, registry, cache_dir) -> tuple[float, float, dict]:
    ctx = EvalContext(model=None, data=data, samples=[SampleSet("default", None, _independent_samples(data), 1, 1.0, 500)],
                      device=torch.device("cpu"), cache_dir=cache_dir, seed=0, registry=registry,
                      extractor_names=["random-cnn"])
    rows = {r.metric: r for r in registry.metrics.get("fid")().compute(ctx)}
    return rows["fid_floor"].value, rows["fid"].value, rows["fid"].details


def _blobs(n: int, seed: int, size: int = 16, levels: int = 8) -> np.ndarray:
    """1-3 Gaussian blobs of random centre and width per image: structure no per-pixel model reproduces."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(2, size - 2, 2)
            r = rng.uniform(1.5, 3.5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.round(np.clip(out, 0, 1) * (levels - 1)).astype(np.uint8)


def test_floor_and_per_pixel_baseline_are_ten_times_apart_on_digits(registry, cache_dir):
    data = registry.datasets.get("digits")().load()
    floor, baseline, details = _floor_and_baseline(data, registry, cache_dir)
    assert baseline >= 10 * floor, (floor, baseline)  # 20.5 and 236 when written
    assert 5 < floor < 100  # a readable scale, not the 1e-6 of raw random features
    assert details["whitening_ridge"] == RIDGE and details["whitening_n"] == len(data.train)
    assert details["whitening"].startswith("ZCA") and details["recipe"].startswith(extractors.RANDOM_RECIPE_VERSION)


def test_floor_and_per_pixel_baseline_are_ten_times_apart_on_a_user_npz(registry, tmp_path):
    path = tmp_path / "blobs.npz"
    np.savez(path, train=_blobs(2000, 0), test=_blobs(500, 1), levels=8)
    data = NpzDataset(path).load()
    floor, baseline, details = _floor_and_baseline(data, registry, tmp_path / "cache")
    assert baseline >= 10 * floor, (floor, baseline)  # 2.3 and 3800 when written
    assert details["whitening_n"] == len(data.train) == 1800


def test_the_whitening_is_fitted_once_and_cached(registry, tmp_path, monkeypatch):
    data = registry.datasets.get("digits")().load()
    first = RandomCNNExtractor.load(data, tmp_path, torch.device("cpu"))
    monkeypatch.setattr(extractors, "fit_whitening", lambda *a, **k: pytest.fail("refitted instead of read from the cache"))
    again = RandomCNNExtractor.load(data, tmp_path, torch.device("cpu"))
    x = data.unit("test")[:50]
    assert again.sha256 == first.sha256 and torch.equal(again.features(x), first.features(x))
    train = first.features(data.unit("train")).double()
    with torch.no_grad():
        raw = first.module.net(data.unit("train")).double()
    lam = torch.linalg.eigvalsh(torch.cov(raw.T)).clamp_min(0)
    shrunk = float((lam / (lam + RIDGE * lam.mean())).sum())  # each direction's variance after the ridge
    assert torch.allclose(train.mean(0), torch.zeros(128, dtype=torch.float64), atol=1e-3)
    assert abs(float(torch.cov(train.T).trace()) / shrunk - 1) < 1e-3 and shrunk > 100
