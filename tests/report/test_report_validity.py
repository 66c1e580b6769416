"""A bits/dim more than three standard errors below the data entropy is invalid, and flagged everywhere."""
from __future__ import annotations

from pathlib import Path

import pytest
from report_fakes import write_run

from genbench.report.board import ENTROPY_LABEL, build_boards
from genbench.report.inputs import load_runs
from genbench.report.markdown import to_markdown
from genbench.report.validity import invalid_likelihoods


def test_bits_per_dim_below_the_data_entropy_is_invalid(tmp_path: Path, displays) -> None:
    entropy = 1.60
    # cheat: 1.0 ± 0.01 is 60 standard errors below; honest: 1.59 ± 0.01 is 1 standard error below (noise)
    for seed in (0, 1):
        write_run(tmp_path, "cheat", seed, {"default": (5.0, 10.0, 1)}, {"exact": 1.0}, entropy=entropy, stderr=0.01)
        write_run(tmp_path, "honest", seed, {"default": (6.0, 10.0, 1)}, {"exact": 1.605}, entropy=entropy, stderr=0.01)
    frame, _ = load_runs(tmp_path / "runs")
    frame.loc[(frame["model"] == "honest") & (frame["metric"] == "bits_per_dim"), "value"] = 1.59  # pin the jitter
    b = build_boards(frame, displays)["digits"]
    assert b.entropy == pytest.approx(entropy)
    assert {i["model"] for i in b.invalid} == {"cheat"}
    t = next(t for t in b.tables if t.name == "likelihood")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "bits_per_dim")
    cells = {row.model: t.cell(r, c) for r, row in enumerate(t.rows)}
    assert cells["cheat"].invalid and cells["cheat"].mark == ""
    assert not cells["honest"].invalid
    assert cells[ENTROPY_LABEL].mean == pytest.approx(entropy)
    val = next(i for i, col in enumerate(t.columns) if col.metric == "val_bits_per_dim")
    assert t.cell(len(t.rows) - 1, val).mean == pytest.approx(entropy)  # the entropy bounds validation bits/dim too
    assert "INVALID" in to_markdown(b)


def test_missing_standard_error_counts_as_zero_and_no_entropy_flags_nothing() -> None:
    import pandas as pd

    df = pd.DataFrame([{"model": "m", "metric": "bits_per_dim", "kind": "exact", "run_id": "r", "seed": 0,
                        "value": 1.59, "stderr": float("nan")}])
    (flag,) = invalid_likelihoods(df, 1.6)
    assert flag["sigmas_below"] == float("inf") and flag["stderr"] == 0.0
    assert invalid_likelihoods(df, None) == [] and invalid_likelihoods(df, 1.5) == []
