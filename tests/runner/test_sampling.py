"""Sampling seeds: draw 0 is what a single draw always was; every row and file says which draw it is."""
from __future__ import annotations

import numpy as np

from genbench.runner import CellSpec, Runner
from genbench.runner.sampling import generator_seed

TINY = {"max_steps": 20, "n_samples": 60, "sample_batch_size": 30, "eval_every": 10}


def test_sampling_seed_zero_is_the_historical_generator_seed():
    assert [generator_seed(3, i) for i in range(3)] == [3 * 7919 + 17 * i + 1 for i in range(3)]
    others = {generator_seed(s, i, j) for s in range(3) for i in range(3) for j in range(1, 4)}
    assert len(others) == 27 and not others & {generator_seed(s, i) for s in range(3) for i in range(3)}


def test_sampling_seeds_add_rows_and_leave_draw_zero_unchanged(tmp_path, registry, cache_dir):
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir,
                    extractors=["random-cnn"])
    one = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
    three = runner.run_cell(CellSpec("independent", "digits", 0, "quick", {**TINY, "sampling_seeds": 3}))
    assert one.state == three.state == "done", three.error
    assert one.run_dir != three.run_dir

    def by_seed(result, metric):
        return {r["sampling_seed"]: r["value"] for r in result.rows if r["metric"] == metric and r["sampler"] == "default"}

    for metric in ("fid", "kid", "precision", "coverage", "images_per_second", "nfe"):
        assert set(by_seed(three, metric)) == {0, 1, 2}, metric
    for metric in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert by_seed(three, metric)[0] == by_seed(one, metric)[0], metric
    fids = by_seed(three, "fid")
    assert len(set(fids.values())) == 3  # independent draws
    floors = [r for r in three.rows if r["metric"] == "fid_floor"]
    assert len(floors) == 1 and floors[0]["sampling_seed"] == 0
    assert sum(r["metric"] == "latency" for r in three.rows) == 1  # draw-independent: measured once per setting
    files = sorted(p.name for p in (three.run_dir / "samples").iterdir())
    assert files == ["default-seed1.npz", "default-seed2.npz", "default.npz", "default.png"]
    draws = [np.load(three.run_dir / "samples" / f)["samples"] for f in files if f.endswith(".npz")]
    assert not np.array_equal(draws[0], draws[2])
    assert np.array_equal(draws[2], np.load(one.run_dir / "samples" / "default.npz")["samples"])


def test_sampling_seeds_must_be_positive(tmp_path, registry):
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", {**TINY, "sampling_seeds": 0}))
    assert result.state == "failed" and "sampling_seeds" in result.error
