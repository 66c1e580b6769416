"""Best marks: the best mean among models; never on reference rows or invalid values; ties all marked."""
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


def test_equal_best_values_are_all_marked_and_all_equal_marks_nothing() -> None:
    t = _table({"a": 1.0, "b": 1.0, "c": 64.0})
    mark_best(t, 0)
    assert _marks(t) == {"a": "best", "b": "best", "c": ""}
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
