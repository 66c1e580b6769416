"""A board as GitHub Markdown: a legend line, then per table its caption (what ± means) and a pipe table;
best values in bold, tied ones in italics; rows of another setting carry a tag in their name."""
from __future__ import annotations

from genbench.report.cells import Board
from genbench.report.formatting import APART_SENTENCE, MISSING, TIE_SENTENCE, Shown, display_rows, interval_caption
from genbench.report.memorisation import flag_sentence

MARKS = {"best": "**{}**", "tied": "*{}*", "": "{}"}
LEGEND = (f"Legend: ↓ lower is better, ↑ higher is better; **bold**: best (its 95% interval does not overlap the "
          f"runner-up's); *italics*: tied with the best (intervals overlap); {MISSING}: not measured for this model. ")


def md_escape(text: str) -> str:
    """Text that Markdown shows as is inside a table cell (no emphasis, code, HTML or cell break)."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("\n", " "))


def md_cell(shown: Shown) -> str:
    return MARKS[shown.mark].format(md_escape(shown.text))


def to_markdown(board: Board) -> str:
    """The board's tables as GitHub Markdown."""
    parts = [f"### {md_escape(board.dataset)}\n", LEGEND + TIE_SENTENCE
             + (" " + APART_SENTENCE if any(r.apart for t in board.tables for r in t.rows) else "") + "\n"]
    if board.entropy is not None:
        parts.append(f"Data entropy (no model may go below): {board.entropy:.4f} bits/dim.\n")
    for f in board.memorisation:
        parts.append(f"**Possible memorisation: {md_escape(f['model'])} ({md_escape(f['sampler'])})**: "
                     + md_escape(flag_sentence(f)) + "\n")
    for t in board.tables:
        header, body = display_rows(t)
        n_left = 2 if "sampler" in header else 1
        parts.append(f"#### {md_escape(t.title)}" + (f" ({md_escape(t.setting)})" if t.setting else "") + "\n")
        parts.append(md_escape(interval_caption(t)) + "\n")
        parts.append("| " + " | ".join(md_escape(h) for h in header) + " |")
        parts.append("|" + "|".join(["---"] * n_left + ["--:"] * (len(header) - n_left)) + "|")
        for line in body:
            parts.append("| " + " | ".join(md_cell(s) for s in line) + " |")
        parts.append("")
    return "\n".join(parts) + "\n"

