"""The runner's rows carry the new metrics, with the extractor chosen by GENBENCH_EXTRACTORS."""
from __future__ import annotations

import json

from genbench.metrics.base import EXTRACTORS_ENV
from genbench.metrics.classes import SampleClasses
from genbench.runner import CellSpec, Runner


def test_a_cell_has_fid_kid_prdc_rows_with_provenance(registry, tmp_path, monkeypatch):
    monkeypatch.setenv(EXTRACTORS_ENV, "random-cnn")  # no classifier training in this test...
    monkeypatch.setattr(SampleClasses, "compute", lambda self, ctx: [])  # ...which sample_classes would do
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    res = runner.run_cell(CellSpec("independent", "digits", 0, "tiny", {"n_samples": 64}))
    assert res.state == "done", res.error
    rows = {(r["metric"], r["sampler"]): r for r in res.rows}
    for metric in ("fid", "fid_floor", "kid", "kid_floor", "precision", "recall", "density", "coverage", "coverage_floor"):
        hits = [r for (m, _), r in rows.items() if m == metric]
        assert hits, metric
        for r in hits:
            details = json.loads(r["details"])
            assert r["extractor"] == "random-cnn" and len(r["extractor_sha256"]) == 64
            assert r["reference"].startswith("test (") and r["n"] > 0 and "resize" in details
