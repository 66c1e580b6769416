"""Numbers as text and a table's cells as text with their marks."""
from __future__ import annotations

import pytest

from genbench.report.cells import Cell, Column, Row, Table
from genbench.report.formatting import INVALID_TAG, MISSING, Shown, arrow, direction_words, display_rows, fmt_value


@pytest.mark.parametrize("mean, ci, text", [
    (28.75, 3.5, "28.8 ± 3.5"),
    (2.43322, 1.5e-5, "2.433220 ± 0.000015"),
    (477_200.0, 20_000.0, "477k ± 20k"),
    (1.2e9, 3e7, "1.200G ± 0.030G"),
    (100.0, 0.0, "100"),
    (1.0, float("nan"), "1"),
    (0.97512, float("nan"), "0.9751"),
    (0.0012, float("nan"), "0.001200"),
    (0.00012, 0.00003, "0.00012 ± 3e-05"),
    (float("nan"), 1.0, MISSING),
    (None, 1.0, MISSING),
])
def test_fmt_value(mean: float, ci: float, text: str) -> None:
    assert fmt_value(mean, ci) == text


def _column(title: str, higher: bool | None, scale: float = 1.0) -> Column:
    return Column("m", "", "", title, higher, False, scale=scale)


def test_arrows_and_words_follow_the_direction() -> None:
    assert (arrow(_column("a", True)), arrow(_column("a", False)), arrow(_column("a", None))) == (" ↑", " ↓", "")
    assert direction_words(_column("a", None)) == "no direction"


def test_display_rows_carry_marks_scale_missing_and_invalid() -> None:
    cols = [_column("latency", False, scale=1e3), _column("bits", False)]
    rows = [Row("a", "s1", "model", 3), Row("b", "", "baseline", 1), Row("floor", "", "floor", 0)]
    t = Table("cost", "Cost", cols, rows)
    t.cells[(0, 0)] = Cell(0.002, mark="best", seeds=3)
    t.cells[(1, 0)] = Cell(0.004, mark="tied", seeds=1)
    t.cells[(0, 1)] = Cell(1.0, invalid=True, mark="", seeds=3)
    header, body = display_rows(t)
    assert header == ["model", "sampler", "seeds", "latency ↓", "bits ↓"]
    assert body[0] == [Shown("a"), Shown("s1"), Shown("3"), Shown("2", "best"), Shown("1" + INVALID_TAG)]
    assert body[1][:4] == [Shown("b (baseline)"), Shown(""), Shown("1"), Shown("4", "tied")]
    assert body[1][4] == Shown(MISSING) and body[2][2] == Shown("")
