"""Memorisation: nearest neighbours against a brute-force loop, replayed training images are caught, real
validation images are not, and a runner cell of a replaying model carries the rows."""
from __future__ import annotations

import json
import math

import pytest
import torch

from genbench.metrics.base import EXTRACTORS_ENV, EvalContext, SampleSet
from genbench.metrics.classes import SampleClasses
from genbench.metrics.memorisation import EXPECTED, Memorisation, proximity
from genbench.metrics.neighbours import nearest
from genbench.runner import CellSpec, Runner


@pytest.fixture(scope="module")
def digits(registry):
    return registry.datasets.get("digits")().load()


def _brute_nearest(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    out = []
    for q in queries.reshape(len(queries), -1).double():
        out.append(min(math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(q, k)))
                       for k in keys.reshape(len(keys), -1).double()))
    return torch.tensor(out, dtype=torch.float64)


def test_nearest_equals_a_brute_force_loop(monkeypatch):
    import genbench.metrics.neighbours as nb

    monkeypatch.setattr(nb, "QUERY_BLOCK", 3)  # several blocks on both sides
    monkeypatch.setattr(nb, "KEY_BLOCK", 4)
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(11, 5, generator=g) * 3 + 100  # an offset the |q|^2 + |k|^2 - 2 q.k form loses digits on
    queries = torch.cat([torch.randn(6, 5, generator=g) * 3 + 100, keys[[2, 7]]])
    d, idx = nearest(queries, keys)
    want = _brute_nearest(queries, keys)
    assert torch.allclose(d, want, rtol=0, atol=1e-12) and d[-2:].eq(0).all() and idx[-2:].tolist() == [2, 7]
    levels = torch.randint(0, 17, (9, 1, 3, 3), generator=g, dtype=torch.uint8)
    d, _ = nearest(levels[:4], levels[3:])
    assert torch.allclose(d, _brute_nearest(levels[:4], levels[3:]), rtol=0, atol=1e-12) and d[3] == 0


def test_proximity_share_is_the_share_below_the_test_fifth_percentile():
    test_d = torch.arange(1, 101, dtype=torch.float64)  # p5 (linear interpolation) = 5.95
    p = proximity(torch.tensor([0.5, 5.9, 5.95, 6.0, 50.0], dtype=torch.float64), test_d)
    assert p["test_p5"] == pytest.approx(5.95, abs=1e-12) and p["share"] == pytest.approx(2 / 5)


def _ctx(digits, registry, cache_dir, samples, extractors=("random-cnn",)):
    return EvalContext(model=None, data=digits, samples=samples, device=torch.device("cpu"), cache_dir=cache_dir,
                       seed=0, registry=registry, extractor_names=list(extractors))


def _by(rows):
    return {(r.metric, r.sampler, r.extractor): r for r in rows}


def test_replayed_training_images_are_caught_and_validation_images_are_not(registry, digits, cache_dir):
    g = torch.Generator().manual_seed(1)
    replay = digits.train[torch.randint(len(digits.train), (600,), generator=g)]
    ctx = _ctx(digits, registry, cache_dir, [SampleSet("replay", None, replay, 1, 1.0, 50),
                                             SampleSet("validation", None, digits.val, 1, 1.0, 50)])
    fid = _by(registry.metrics.get("fid")().compute(ctx))
    rows = _by(Memorisation().compute(ctx))
    train_images = {bytes(x.numpy().tobytes()) for x in digits.train}
    duplicate_rate = sum(bytes(x.numpy().tobytes()) in train_images for x in digits.val) / len(digits.val)
    for space in ("", "random-cnn"):
        copier, real = rows[("closer_than_p5", "replay", space)], rows[("closer_than_p5", "validation", space)]
        assert copier.value == 1.0 and copier.details["expected_share"] == EXPECTED
        se0 = real.details["expected_stderr"]
        assert se0 == pytest.approx(math.sqrt(0.05 * 0.95 * (1 / 300 + 1 / 300)))
        assert abs(real.value - EXPECTED) <= 3 * se0, (space, real.value)
        floor = rows[("closer_than_p5_floor", "real data", space)]
        assert floor.value == real.value and floor.details["source"].startswith("validation")
    assert rows[("exact_copies", "replay", "")].value == 1.0
    assert rows[("exact_copies", "validation", "")].value == duplicate_rate == rows[("exact_copies_floor", "real data", "")].value
    copier_train, real_train = rows[("fid_train", "replay", "random-cnn")], rows[("fid_train", "validation", "random-cnn")]
    # a copier sits far closer to its training set than to the test split; real images are about as far from both
    assert copier_train.value < 0.3 * fid[("fid", "replay", "random-cnn")].value
    assert copier_train.details["gap"] == pytest.approx(fid[("fid", "replay", "random-cnn")].value - copier_train.value)
    assert copier_train.details["gap"] > 3 * copier_train.details["gap_stderr"] > 0
    assert real_train.details["gap"] < copier_train.details["gap"]
    for r in rows.values():
        assert r.unit == "fraction" or r.metric == "fid_train"
        assert r.stderr is not None and r.stderr >= 0 and r.reference.startswith("train (digits")
        assert r.details["stderr_method"]


def test_memorisation_rows_are_declared_in_their_own_table(registry):
    from genbench.metrics.display import registry_displays

    shown = registry_displays(registry)
    assert shown["exact_copies"].table == shown["closer_than_p5"].table == shown["fid_train"].table == "memorisation"
    assert shown["exact_copies"].higher is False and shown["closer_than_p5"].higher is None
    assert shown["closer_than_p5_floor"].floor_of == "closer_than_p5" and shown["fid_train"].per_extractor


def test_a_replaying_models_cell_carries_the_memorisation_rows(registry, tmp_path, monkeypatch):
    monkeypatch.setenv(EXTRACTORS_ENV, "random-cnn")
    monkeypatch.setattr(SampleClasses, "compute", lambda self, ctx: [])  # no classifier training here
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=tmp_path / "cache")
    res = runner.run_cell(CellSpec("replay", "digits", 0, "tiny", {}))
    assert res.state == "done", res.error
    rows = {(r["metric"], r["extractor"]): r for r in res.rows if r["sampler"] != "real data"}
    assert rows[("exact_copies", "")]["value"] == 1.0 and rows[("closer_than_p5", "random-cnn")]["value"] == 1.0
    assert json.loads(rows[("closer_than_p5", "")]["details"])["expected_share"] == EXPECTED
    assert rows[("fid", "random-cnn")]["stderr"] > 0 and rows[("kid", "random-cnn")]["stderr"] > 0
