"""results.json's leaderboard records and the JSON-safe conversion."""
from __future__ import annotations

import json
import math

import pandas as pd

from genbench.report.cells import Board, Cell, Column, Row, Table
from genbench.report.export import json_safe, results_json, table_records


def _board() -> Board:
    t = Table("cost", "Cost", [Column("nfe", "", "", "NFE", False, False), Column("train_steps", "", "", "train steps", None, True)],
              [Row("a", "s", "model", 1), Row("b", "s", "baseline", 1)])
    t.cells[(0, 0)] = Cell(1.0, float("nan"), 1, mark="best")
    t.cells[(1, 0)] = Cell(4.0, 0.5, 2, mark="tied")
    t.cells[(0, 1)] = Cell(100.0, float("nan"), 1)
    return Board("digits", [t], [{"model": "a", "sigmas_below": float("inf")}], None)


def test_records_one_per_cell_in_row_then_column_order() -> None:
    recs = table_records(_board())
    assert [(r["model"], r["metric"]) for r in recs] == [("a", "nfe"), ("a", "train_steps"), ("b", "nfe")]
    assert recs[0]["best"] is True and recs[0]["ci95"] is None and recs[2]["best"] is False
    assert recs[1]["higher_is_better"] is None and recs[2]["role"] == "baseline" and recs[2]["ci95"] == 0.5


def test_json_has_no_nan_or_infinity() -> None:
    assert json_safe({"a": [1.0, float("nan"), {"b": float("inf")}], "c": "x"}) == {"a": [1.0, None, {"b": None}], "c": "x"}
    frame = pd.DataFrame([{"metric": "nfe", "value": float("nan")}])
    text = results_json(frame, {"digits": _board()}, [{"run_id": "r", "state": "failed", "extra": 1}], ["genbench run"], "now", {})
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["invalid"][0]["sigmas_below"] is None and data["rows"] == [{"metric": "nfe", "value": None}]
    assert data["failed"] == [{"run_id": "r", "model": None, "dataset": None, "seed": None, "preset": None,
                               "state": "failed", "error": None}]
    assert not math.isnan(data["leaderboard"][0]["mean"])
