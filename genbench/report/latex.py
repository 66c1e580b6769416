"""A board as LaTeX ``tabular`` environments (booktabs rules); best values in bold, tied ones underlined."""
from __future__ import annotations

from genbench.report.cells import Board
from genbench.report.formatting import Shown, display_rows

MARKS = {"best": r"\textbf{{{}}}", "tied": r"\underline{{{}}}", "": "{}"}
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "±": r"$\pm$", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def tex_escape(text: str) -> str:
    """Text that LaTeX typesets as is (special characters escaped; ±, —, arrows as math or dashes)."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def tex_cell(shown: Shown) -> str:
    return MARKS[shown.mark].format(tex_escape(shown.text))


def to_latex(board: Board) -> str:
    """The board's tables as LaTeX ``tabular`` (booktabs)."""
    parts = [f"% genbench leaderboard: {tex_escape(board.dataset)}"]
    for t in board.tables:
        header, body = display_rows(t)
        n_left = 2 if "sampler" in header else 1
        parts.append(f"% {t.title}")
        parts.append(r"\begin{tabular}{" + "l" * n_left + "r" * (len(header) - n_left) + "}")
        parts.append(r"\toprule")
        parts.append(" & ".join(tex_escape(h) for h in header) + r" \\")
        parts.append(r"\midrule")
        for line in body:
            parts.append(" & ".join(tex_cell(s) for s in line) + r" \\")
        parts.append(r"\bottomrule")
        parts.append(r"\end{tabular}")
        parts.append("")
    return "\n".join(parts) + "\n"
