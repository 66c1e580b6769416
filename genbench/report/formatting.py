"""Numbers as text: ``mean ± ci`` at the interval's precision, SI suffixes, direction arrows; a table's
cells as text with their marks (what the Markdown and LaTeX writers share)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from genbench.report.cells import Cell, Column, Mark, Table

MISSING = "—"
INVALID_TAG = " INVALID"
_SI = [(1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")]  # (from, divide by, suffix)


def _sig(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def fmt_value(mean: float | None, ci: float = float("nan")) -> str:
    """``mean ± ci`` with the mean rounded to the CI's precision (2 significant digits of the CI).

    Large numbers use SI suffixes (k, M, G, T), tiny ones scientific notation; nan -> "—".
    """
    if mean is None or not math.isfinite(mean):
        return MISSING
    has_ci = ci is not None and math.isfinite(ci)
    big = max(abs(mean), abs(ci) if has_ci else 0.0)
    if has_ci and ci == 0:  # identical over seeds (step counts, NFE, parameters)
        has_ci = False
    for threshold, factor, suffix in _SI:
        if big >= threshold:
            m = mean / factor
            if has_ci:
                text = fmt_value(m, ci / factor)
                left, _, right = text.partition(" ± ")
                return f"{left}{suffix} ± {right}{suffix}"
            return (_sig(m, 3) if abs(m) >= 1 else _sig(m, 2)) + suffix
    if mean != 0 and abs(mean) < 1e-3:
        text = f"{mean:.3g}"
        return text + (f" ± {ci:.2g}" if has_ci else "")
    if has_ci and ci > 0:
        decimals = max(0, 1 - int(math.floor(math.log10(ci))))
        decimals = min(decimals, 6)
        return f"{mean:.{decimals}f} ± {ci:.{decimals}f}"
    if float(mean).is_integer():
        return str(int(mean))
    return _sig(mean, 4)


def cell_text(cell: Cell, scale: float = 1.0) -> str:
    """The cell's ``mean ± ci`` at the column's display scale."""
    return fmt_value(cell.mean * scale, cell.ci * scale)


def arrow(column: Column) -> str:
    return " ↑" if column.higher is True else " ↓" if column.higher is False else ""


def direction_words(column: Column) -> str:
    return "higher is better" if column.higher is True else "lower is better" if column.higher is False else "no direction"


@dataclass(frozen=True)
class Shown:
    """One table cell as text, with its mark (the writer decides how a mark looks)."""

    text: str
    mark: Mark = ""


def display_rows(t: Table) -> tuple[list[str], list[list[Shown]]]:
    """The table as a header and rows of text cells: model (baseline tagged), sampler (when any row has one),
    seeds, then one cell per column; a missing value is "—", an invalid one is tagged and never marked."""
    with_sampler = any(r.sampler for r in t.rows)
    header = ["model"] + (["sampler"] if with_sampler else []) + ["seeds"] + [c.title + arrow(c) for c in t.columns]
    body = []
    for r, row in enumerate(t.rows):
        name = row.model + (" (baseline)" if row.role == "baseline" else "")
        line = [Shown(name)] + ([Shown(row.sampler)] if with_sampler else []) + [Shown(str(row.seeds) if row.seeds else "")]
        for c, col in enumerate(t.columns):
            cell = t.cell(r, c)
            if cell is None:
                line.append(Shown(MISSING))
            elif cell.invalid:
                line.append(Shown(cell_text(cell, col.scale) + INVALID_TAG))
            else:
                line.append(Shown(cell_text(cell, col.scale), cell.mark))
        body.append(line)
    return header, body
