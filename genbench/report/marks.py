"""Which cells of a column stand out: the best mean among the models' rows.

Reference rows (real-data floor, data entropy) and invalid values are never ranked; a
column where fewer than two models have a value, or where every value is equal, marks
nothing.  Every cell whose mean equals the best (to 1e-12 relative) is marked "best".
"""
from __future__ import annotations

import math

from genbench.report.cells import Table


def mark_best(table: Table, c: int) -> None:
    """Set ``mark = "best"`` on the cells of column ``c`` that hold its best mean (see the module docstring)."""
    col = table.columns[c]
    if col.higher is None:
        return
    cands = [(r, cell) for r, cell in table.column_cells(c)
             if table.rows[r].role != "floor" and not cell.invalid and cell.finite]
    if len({table.rows[r].model for r, _ in cands}) < 2:
        return
    best = max(cell.mean for _, cell in cands) if col.higher else min(cell.mean for _, cell in cands)
    if all(math.isclose(cell.mean, best, rel_tol=1e-12, abs_tol=0.0) for _, cell in cands):
        return  # everyone ties: nothing to point at
    for _, cell in cands:
        cell.mark = "best" if math.isclose(cell.mean, best, rel_tol=1e-12, abs_tol=0.0) else ""
