"""The metrics the runner calls: rows, provenance, floors, caching of reference statistics, extractor registry."""
from __future__ import annotations

import pytest
import torch

from genbench.metrics.base import EXTRACTORS_ENV, EvalContext, SampleSet, default_extractor_names
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.plugins import UnknownNameError


@pytest.fixture(scope="module")
def digits(registry):
    return registry.datasets.get("digits")().load()


def _ctx(digits, cache_dir, registry, n=200):
    samples = [SampleSet("fake-a", None, digits.train[:n], 1, 1.0, 50),
               SampleSet("fake-b", 5, torch.flip(digits.train[n : 2 * n], dims=(3,)), 5, 1.0, 50)]
    return EvalContext(model=None, data=digits, samples=samples, device=torch.device("cpu"), cache_dir=cache_dir, seed=0,
                       registry=registry, extractor_names=["random-cnn"])


def test_rows_carry_provenance_and_floors(registry, digits, tmp_path):
    ctx = _ctx(digits, tmp_path, registry)
    rows = []
    for name in ("fid", "kid", "prdc"):
        rows += registry.metrics.get(name)().compute(ctx)
    metrics = {(r.metric, r.sampler) for r in rows}
    for m in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert (m, "fake-a") in metrics and (m, "fake-b") in metrics
        assert (f"{m}_floor", "real data") in metrics
    ext = ctx.extractor("random-cnn")
    for r in rows:
        assert r.extractor == "random-cnn" and r.extractor_sha256 == ext.sha256 and len(r.extractor_sha256) == 64
        assert r.reference.startswith("test (digits") and r.n and r.n > 0
        assert r.details["resize"].startswith("none (native 8x8") and r.details["n_reference"] == len(digits.test)
    kid_row = next(r for r in rows if r.metric == "kid")
    assert kid_row.details["subsets"] == 100 and kid_row.details["subset_size"] == 200
    by = {(r.metric, r.sampler): r.value for r in rows}
    # mirrored digits are further from the test split than real ones; the floor is the smallest FID
    assert by[("fid_floor", "real data")] < by[("fid", "fake-a")] < by[("fid", "fake-b")]
    assert by[("precision", "fake-b")] < by[("precision", "fake-a")]
    # the row's FID is the FID of the same images computed from scratch
    direct = fid_between(ext, digits.unit("test"), digits.spec.to_unit(digits.train[:200]))
    assert abs(by[("fid", "fake-a")] - direct) <= 1e-9 * direct


def test_reference_statistics_are_cached_by_data_and_weights(registry, digits, tmp_path):
    first = _ctx(digits, tmp_path, registry)
    ext = first.extractor("random-cnn")
    ref = first.reference_features(ext)
    assert not ref.cached and ref.n == len(digits.test)
    files = list((tmp_path / "features").glob("random-cnn-*.pt"))
    assert len(files) == 1
    again = _ctx(digits, tmp_path, registry).reference_features(ext)
    assert again.cached and torch.equal(again.features, ref.features) and torch.equal(again.stats.m2, ref.stats.m2)
    ext.sha256 = "0" * 64  # other weights -> another cache entry, never the stale one
    assert not _ctx(digits, tmp_path, registry).reference_features(ext).cached


def test_extractor_names_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(EXTRACTORS_ENV, raising=False)
    assert default_extractor_names() == ["classifier"]
    monkeypatch.setenv(EXTRACTORS_ENV, "classifier, inception")
    assert default_extractor_names() == ["classifier", "inception"]


def test_extractors_are_registered_plugins(registry, digits, tmp_path):
    assert {"classifier", "random-cnn", "inception"} <= set(registry.extractors.names())
    assert registry.extractors.entries["inception"].plugin.distribution == "genbench"
    with pytest.raises(UnknownNameError, match="did you mean 'inception'"):
        get_extractor("incepton", digits, tmp_path, torch.device("cpu"), registry)
    with pytest.raises(ValueError, match="fitted to a data set"):
        get_extractor("classifier", None, tmp_path, torch.device("cpu"), registry)


def test_every_sample_row_carries_a_seeded_standard_error_and_its_method(registry, digits, cache_dir):
    def rows():
        ctx = _ctx(digits, cache_dir, registry, n=150)  # more rows than dimensions: no singular covariances
        out = []
        for name in ("fid", "kid", "prdc"):
            out += registry.metrics.get(name)().compute(ctx)
        return {(r.metric, r.sampler): r for r in out}

    torch.manual_seed(5)
    state = torch.get_rng_state()
    first = rows()
    assert torch.equal(state, torch.get_rng_state())  # resampling never touches the global generator
    again = rows()
    for key, r in first.items():
        assert r.stderr is not None and r.stderr >= 0 and r.stderr == again[key].stderr, key
        assert r.stderr > 0 or r.metric.startswith(("coverage", "recall")), key  # all groups may agree on a share
        assert r.details["stderr_method"], key
    fid, floor = first[("fid", "fake-a")], first[("fid_floor", "real data")]
    assert fid.details["stderr_resamples"] == 200 and fid.details["over_floor"] == fid.value / floor.value
    assert 0 < fid.details["over_floor_stderr"] < 10 * fid.details["over_floor"]
    kid, kid_floor = first[("kid", "fake-a")], first[("kid_floor", "real data")]
    assert kid.details["minus_floor"] == kid.value - kid_floor.value and kid.details["minus_floor_stderr"] > 0
    assert kid.stderr ** 2 == pytest.approx(kid.details["stderr_bootstrap"] ** 2 + kid.details["stderr_subsets"] ** 2)
    assert kid.details["std_over_subsets"] > 0 and first[("precision", "fake-a")].details["stderr_groups"] == 10
