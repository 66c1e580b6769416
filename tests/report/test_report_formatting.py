"""Numbers as text and a table's cells as text with their marks."""
from __future__ import annotations

import pytest

from genbench.report.cells import Cell, Column, Row, Table
from genbench.report.formatting import (INVALID_TAG, MISSING, Shown, arrow, direction_words, display_rows, fmt_value,
                                        interval_caption, row_label)


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


@pytest.mark.parametrize("mean, ci, text", [
    (0.99, 1e-17, "0.9900"),  # float noise of identical values: no "± 0.000000"
    (0.99, 4e-7, "0.9900"),
    (477_200.0, 1e-3, "477k"),
    (6.3739, 4.067, "6.4 ± 4.1"),
])
def test_a_half_width_that_rounds_away_prints_no_plus_minus(mean: float, ci: float, text: str) -> None:
    assert fmt_value(mean, ci) == text


def test_the_caption_names_only_the_intervals_shown() -> None:
    t = Table("quality", "Q", [_column("fid", False)], [Row("a", "", "model", 1), Row("b", "", "model", 3)])
    t.cells[(0, 0)] = Cell(3.0, 0.4, 1, method="normal")
    assert "one training seed" in interval_caption(t) and "several" not in interval_caption(t)
    assert "without ±" not in interval_caption(t)
    t.cells[(1, 0)] = Cell(4.0, 0.0, 3, method="t")  # identical over seeds: printed bare
    assert "A value without ± has no recorded uncertainty" in interval_caption(t)
    assert "several" not in interval_caption(t)
    t.cells[(0, 0)] = Cell(3.0, float("nan"), 1)
    assert interval_caption(t).startswith("No value here carries an uncertainty")
    assert row_label(Row("m", "", "baseline", tag="tiny, n=8", flag="possible memorisation")) == \
        "m (baseline) (tiny, n=8) [possible memorisation]"
