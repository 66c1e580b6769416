"""Numbers as text: ``mean ± ci`` at the interval's precision, SI suffixes, direction arrows; a table's
cells as text with their marks, its caption and the legend (what the HTML, Markdown and LaTeX writers share)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from genbench.report.cells import Cell, Column, Mark, Row, Table

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
    if has_ci and ci <= 1e-6 * abs(mean):  # identical over seeds (step counts, NFE), or float noise
        has_ci = False
    for threshold, factor, suffix in _SI:
        if big >= threshold:
            m = mean / factor
            if has_ci:
                text = fmt_value(m, ci / factor)
                left, sep, right = text.partition(" ± ")
                return f"{left}{suffix} ± {right}{suffix}" if sep else f"{text}{suffix}"
            return (_sig(m, 3) if abs(m) >= 1 else _sig(m, 2)) + suffix
    if mean != 0 and abs(mean) < 1e-3:
        text = f"{mean:.3g}"
        return text + (f" ± {ci:.2g}" if has_ci else "")
    if has_ci and ci > 0:
        decimals = max(0, 1 - int(math.floor(math.log10(ci))))
        decimals = min(decimals, 6)
        if float(f"{ci:.{decimals}f}") > 0:  # a half-width that rounds to zero is shown as none, never "± 0.000000"
            return f"{mean:.{decimals}f} ± {ci:.{decimals}f}"
    if float(mean).is_integer():
        return str(int(mean))
    return _sig(mean, 4)


def shows_interval(cell: Cell, scale: float = 1.0) -> bool:
    """True when the cell's text carries a ± (a finite half-width that does not round away)."""
    return " ± " in fmt_value(cell.mean * scale, cell.ci * scale)


def interval_note(cell: Cell) -> str:
    """How the cell's interval was made, in words (a cell's tooltip)."""
    se = f"; standard error within a run: {cell.stderr:.2g}" if math.isfinite(cell.stderr) else ""
    if cell.method == "normal":
        return f"one run: mean ± 1.96 standard errors (normal approximation){se}"
    if cell.method == "t":
        if not shows_interval(cell):
            return f"identical over {cell.seeds} seeds{se}"
        return f"mean ± Student-t 95% interval over {cell.seeds} seeds (each includes its run's sampling noise){se}"
    return f"mean over {cell.seeds} seed(s); no standard error recorded: no interval" if cell.seeds else ""


#: how the intervals are made, per method (``Cell.method``), as the captions say it
METHOD_WORDS = {
    "normal": "one training seed: mean ± 1.96 standard errors of that run's own estimate (normal approximation)",
    "t": ("several training seeds: mean ± Student-t 95% interval over the seeds, whose values already include "
          "each run's sampling noise (never narrower than 1.96 times the runs' own standard error of the mean)"),
}
#: how to read the marks and a tie (shown near every board, and in results.md / results.tex)
TIE_SENTENCE = ("How to read a tie: a value is marked best only when its 95% interval does not overlap the "
                "runner-up's; otherwise the data cannot separate them, and every value whose interval overlaps the "
                "best's is marked tied (no mark at all when every model ties). A tie means \"not separated by these "
                "runs\", not \"equal\": more seeds or samples may separate them.")
APART_SENTENCE = ("Rows tagged with a setting (another preset, sample size n, split or extractor version) were "
                  "measured differently from the ranked rows and are never ranked against them.")


def interval_caption(t: Table) -> str:
    """What the table's ± mean, built from the cells it shows (so the caption never claims an interval that
    no cell carries)."""
    cells = [(cell, t.columns[c].scale) for (_, c), cell in t.cells.items() if cell.finite]
    methods = [m for m in METHOD_WORDS if any(cell.method == m and shows_interval(cell, k) for cell, k in cells)]
    bare = any(not shows_interval(cell, k) for cell, k in cells)
    if not methods:
        return "No value here carries an uncertainty (one run without a recorded standard error, or identical over seeds)."
    text = "± is the half-width of a 95% interval; " + "; ".join(METHOD_WORDS[m] for m in methods) + "."
    if bare:
        text += " A value without ± has no recorded uncertainty (or is identical over seeds) and counts as exact when ranking."
    return text


def row_label(row: Row) -> str:
    """The row's name as the tables print it: the baseline, an external model (``genbench eval``), a setting tag
    and a flag say so."""
    return (row.model + (" (baseline)" if row.role == "baseline" else "") + (" (external)" if row.role == "external" else "")
            + (f" ({row.tag})" if row.tag else "")
            + (f" [{row.flag}]" if row.flag else ""))


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
    """The table as a header and rows of text cells: model (baseline, setting and flag tagged), sampler (when
    any row has one), seeds, then one cell per column; a missing value is "—", an invalid one is tagged and never
    marked."""
    with_sampler = any(r.sampler for r in t.rows)
    header = ["model"] + (["sampler"] if with_sampler else []) + ["seeds"] + [c.title + arrow(c) for c in t.columns]
    body = []
    for r, row in enumerate(t.rows):
        line = [Shown(row_label(row))] + ([Shown(row.sampler)] if with_sampler else []) + [Shown(str(row.seeds) if row.seeds else "")]
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
