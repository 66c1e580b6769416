"""Marks: best only where the best's 95% interval clears the runner-up's, else the group overlapping the best is
tied; never on reference rows, rows of another setting or invalid values."""
from __future__ import annotations

from genbench.report.cells import Cell, Column, Row, Table
from genbench.report.marks import mark_best


def _table(values: dict[str, float], higher: bool | None = False, roles: dict[str, str] | None = None) -> Table:
    roles = roles or {}
    rows = [Row(m, "", roles.get(m, "model")) for m in values]
    t = Table("quality", "Sample quality", [Column("fid", "", "", "FID", higher, False)], rows)
    for r, v in enumerate(values.values()):
        t.cells[(r, 0)] = Cell(v)
    return t


def _marks(t: Table) -> dict[str, str]:
    return {row.model: t.cell(r, 0).mark for r, row in enumerate(t.rows)}


def test_lowest_or_highest_mean_is_best() -> None:
    t = _table({"a": 3.0, "b": 2.0, "c": 5.0})
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": "best", "c": ""}
    t = _table({"a": 3.0, "b": 2.0, "c": 5.0}, higher=True)
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": "", "c": "best"}


def test_equal_best_values_are_tied_and_all_equal_marks_nothing() -> None:
    t = _table({"a": 1.0, "b": 1.0, "c": 64.0})
    mark_best(t, 0)
    assert _marks(t) == {"a": "tied", "b": "tied", "c": ""}
    t = _table({"a": 1.0, "b": 1.0})
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": ""}


def test_floor_invalid_unranked_and_single_model_are_never_marked() -> None:
    t = _table({"a": 3.0, "b": 2.0, "real data": 0.5}, roles={"real data": "floor"})
    t.cells[(1, 0)].invalid = True
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": "", "real data": ""}  # only one valid model left
    t = _table({"a": 3.0, "b": 2.0}, higher=None)
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": ""}
    t = _table({"a": 3.0, "b": float("nan"), "c": 4.0})
    mark_best(t, 0)
    assert _marks(t) == {"a": "best", "b": "", "c": ""}


def _ci_table(cells: dict[str, tuple[float, float]], higher: bool = False, apart: tuple[str, ...] = ()) -> Table:
    rows = [Row(m, "", "model", apart=m in apart) for m in cells]
    t = Table("quality", "Sample quality", [Column("fid", "", "", "FID", higher, False)], rows)
    for r, (mean, ci) in enumerate(cells.values()):
        t.cells[(r, 0)] = Cell(mean, ci)
    return t


def test_best_only_when_its_interval_clears_the_runner_up() -> None:
    t = _ci_table({"a": (3.0, 0.4), "b": (4.0, 0.5), "c": (9.0, 1.0)})  # 3.4 < 3.5: separated
    mark_best(t, 0)
    assert _marks(t) == {"a": "best", "b": "", "c": ""}
    t = _ci_table({"a": (3.0, 0.5), "b": (4.0, 0.5), "c": (9.0, 1.0)})  # 3.5 touches 3.5: not separated
    mark_best(t, 0)
    assert _marks(t) == {"a": "tied", "b": "tied", "c": ""}


def test_the_tied_group_is_whatever_overlaps_the_best() -> None:
    """b overlaps a; c overlaps b but not a: c is not tied with the best."""
    t = _ci_table({"a": (0.90, 0.02), "b": (0.87, 0.02), "c": (0.83, 0.03), "d": (0.5, 0.1)}, higher=True)
    mark_best(t, 0)
    assert _marks(t) == {"a": "tied", "b": "tied", "c": "", "d": ""}
    t = _ci_table({"a": (1.0, 2.0), "b": (2.0, 2.0)})  # everyone ties: nothing to point at
    mark_best(t, 0)
    assert _marks(t) == {"a": "", "b": ""}


def test_rows_kept_apart_are_never_ranked() -> None:
    t = _ci_table({"tiny": (0.1, 0.01), "a": (3.0, 0.1), "b": (5.0, 0.1)}, apart=("tiny",))
    mark_best(t, 0)
    assert _marks(t) == {"tiny": "", "a": "best", "b": ""}
