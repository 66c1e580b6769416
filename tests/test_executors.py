"""The Ray executor runs the (model x seed) grid as tasks on a local cluster, offline."""
from __future__ import annotations

import pytest

from genbench.executors import run_local, run_ray
from genbench.runner import CellSpec, Runner

ray = pytest.importorskip("ray", reason="Ray is in the dev extra; install genbench[dev]")

TINY = {"max_steps": 5, "n_samples": 30, "sample_batch_size": 30, "eval_every": 5}


def test_ray_grid_matches_local_and_isolates_failures(tmp_path, cache_dir, registry):
    """Entry-point models run as Ray tasks; a bad cell fails alone; numbers equal a local run's."""
    cells = [
        CellSpec("independent", "digits", 0, "quick", TINY),
        CellSpec("independent", "digits", 1, "quick", TINY),
        CellSpec("independent", "digits", 2, "quick", {**TINY, "alpha": "-5"}),  # negative counts: NaN log-probs
    ]
    kwargs = dict(out_dir=str(tmp_path / "ray"), device="cpu", cache_dir=str(cache_dir), extractors=["classifier"])
    try:
        results = run_ray(kwargs, cells, num_cpus=2)
    finally:
        ray.shutdown()
    by_seed = {r.spec.seed: r for r in results}
    assert by_seed[0].state == by_seed[1].state == "done"
    assert by_seed[2].state == "failed" and by_seed[2].error
    local = run_local(Runner(tmp_path / "local", registry=registry, device="cpu", progress=False, cache_dir=cache_dir,
                             extractors=["classifier"]), cells[:1])[0]
    pick = lambda rows: {(r["metric"], r["sampler"], r["kind"]): r["value"] for r in rows if r["metric"] in ("bits_per_dim", "fid")}  # noqa: E731
    assert pick(by_seed[0].rows) == pytest.approx(pick(local.rows), rel=1e-9)
