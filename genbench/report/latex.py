"""A board as LaTeX ``table`` floats to paste into a paper: booktabs rules, a caption that says what ± means
and how to read the marks, a label; best values in bold, tied ones underlined.

Needs ``\\usepackage{booktabs}``.  Rows kept apart (another setting) and the reference rows follow a
``\\midrule``; every text that comes from a run is escaped (:func:`tex_escape`).
"""
from __future__ import annotations

import re

from genbench.report.cells import Board, Table
from genbench.report.formatting import Shown, display_rows, interval_caption

MARKS = {"best": r"\textbf{{{}}}", "tied": r"\underline{{{}}}", "": "{}"}
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "±": r"$\pm$", "—": "---", "–": "--", "−": r"$-$", "×": r"$\times$", "²": r"$^{2}$", "³": r"$^{3}$",
        "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≈": r"$\approx$", "·": r"$\cdot$", "★": r"$\star$", "⚠": "(!)",
        "[": "{[}", "]": "{]}", "\n": " "}  # a bracket after \\ would be read as its optional argument
MARKS_SENTENCE = ("Bold: best (its 95\\% interval does not overlap the runner-up's); underlined: tied with the best "
                  "(intervals overlap, so the data do not separate them: not separated, not equal).")


def tex_escape(text: str) -> str:
    """Text that LaTeX typesets as is (special characters escaped; ±, —, arrows, × as math or dashes)."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def tex_cell(shown: Shown) -> str:
    return MARKS[shown.mark].format(tex_escape(shown.text))


def tex_label(dataset: str, table: str) -> str:
    """A label made only of [a-z0-9-:] (LaTeX labels must not hold special characters)."""
    slug = lambda s: re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "x"  # noqa: E731
    return f"tab:genbench-{slug(dataset)}-{slug(table)}"


def _group(t: Table, r: int) -> int:
    row = t.rows[r]
    return 2 if row.role == "floor" else 1 if row.apart else 0


def table_latex(board: Board, t: Table) -> str:
    """One table float: caption (data set, title, setting, what ± means, the marks), label, booktabs tabular."""
    header, body = display_rows(t)
    n_left = 2 if "sampler" in header else 1
    setting = f" ({t.setting})" if t.setting else ""
    caption = f"{board.dataset}: {t.title}{setting}. "
    lines = [r"\begin{table}[tbp]", r"\centering",
             r"\caption{" + tex_escape(caption + interval_caption(t)) + " " + MARKS_SENTENCE + "}",
             r"\label{" + tex_label(board.dataset, t.name) + "}",
             r"\begin{tabular}{" + "l" * n_left + "r" * (len(header) - n_left) + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for r, line in enumerate(body):
        if r and _group(t, r) != _group(t, r - 1):
            lines.append(r"\midrule")
        lines.append(" & ".join(tex_cell(s) for s in line) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def to_latex(board: Board) -> str:
    """The board's tables as LaTeX ``table`` floats (booktabs)."""
    parts = [f"% genbench leaderboard: {tex_escape(board.dataset)} (needs \\usepackage{{booktabs}})"]
    for t in board.tables:
        parts.append(table_latex(board, t))
    return "\n".join(parts) + "\n"
