"""A board as GitHub Markdown: one pipe table per table; best values in bold, tied ones in italics."""
from __future__ import annotations

from genbench.report.cells import Board
from genbench.report.formatting import Shown, display_rows

MARKS = {"best": "**{}**", "tied": "*{}*", "": "{}"}


def md_escape(text: str) -> str:
    """Text that Markdown shows as is inside a table cell (no emphasis, code, HTML or cell break)."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("\n", " "))


def md_cell(shown: Shown) -> str:
    return MARKS[shown.mark].format(md_escape(shown.text))


def to_markdown(board: Board) -> str:
    """The board's tables as GitHub Markdown."""
    parts = [f"### {md_escape(board.dataset)}\n"]
    if board.entropy is not None:
        parts.append(f"Data entropy (no model may go below): {board.entropy:.4f} bits/dim.\n")
    for t in board.tables:
        header, body = display_rows(t)
        n_left = 2 if "sampler" in header else 1
        parts.append(f"#### {t.title}\n")
        parts.append("| " + " | ".join(md_escape(h) for h in header) + " |")
        parts.append("|" + "|".join(["---"] * n_left + ["--:"] * (len(header) - n_left)) + "|")
        for line in body:
            parts.append("| " + " | ".join(md_cell(s) for s in line) + " |")
        parts.append("")
    return "\n".join(parts) + "\n"
