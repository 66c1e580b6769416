"""Which cells of a column stand out, only where the data separate them.

The candidates are the ranked rows' cells (models and baselines in the table's main setting;
never reference rows, rows kept apart, invalid or non-finite values).  Each candidate's 95%
interval is [mean - ci, mean + ci]; a value shown without an interval counts as exact
(zero width).  Let B be the candidate with the best mean and R the runner-up (the next best):

* B's interval does not overlap R's (they do not even touch): B is marked "best".
* Otherwise the data do not separate B from R: every candidate whose interval overlaps B's
  (B included) is marked "tied" -- the group that cannot be told apart from the best.

Overlap of two 95% intervals is a conservative test of a difference (it corresponds to a
two-sided level well below 5% for two independent estimates; Schenker & Gentleman 2001), so a
"best" mark is a difference the data support, and a tie says "not separated", not "equal".
A column where fewer than two models have a value, or where every candidate ties with the
best, marks nothing.
"""
from __future__ import annotations

import math

from genbench.report.cells import Cell, Table


def _bounds(cell: Cell) -> tuple[float, float]:
    half = cell.ci if math.isfinite(cell.ci) else 0.0
    return cell.mean - half, cell.mean + half


def overlaps(a: Cell, b: Cell) -> bool:
    """True when the two cells' 95% intervals share at least one point (a value without one is a point)."""
    lo_a, hi_a = _bounds(a)
    lo_b, hi_b = _bounds(b)
    return lo_a <= hi_b and lo_b <= hi_a


def mark_best(table: Table, c: int) -> None:
    """Set ``mark`` on the cells of column ``c``: "best", "tied" or "" (see the module docstring)."""
    col = table.columns[c]
    if col.higher is None:
        return
    cands = [(r, cell) for r, cell in table.column_cells(c)
             if table.rows[r].role != "floor" and not table.rows[r].apart and not cell.invalid and cell.finite]
    for _, cell in cands:
        cell.mark = ""
    if len({table.rows[r].model for r, _ in cands}) < 2:
        return
    ordered = sorted(cands, key=lambda rc: -rc[1].mean if col.higher else rc[1].mean)
    best, runner_up = ordered[0][1], ordered[1][1]
    if not overlaps(best, runner_up):
        best.mark = "best"
        return
    group = [cell for _, cell in ordered if overlaps(cell, best)]
    if len(group) == len(ordered):
        return  # everyone ties with the best: nothing to point at
    for cell in group:
        cell.mark = "tied"
