"""The end-of-run summary: the leaderboards of what ``genbench run`` just ran, as results.md shows them, sized to
the terminal.

The boards are the report's (``genbench.report.build_boards`` with the registry's metric displays, then
``display_rows``: the same titles, units, arrows, floor row and ``mean ± interval`` text as results.md); this
module only lays them out with rich.  A table wider than the terminal is cut into several tables of whole
columns, each repeating the row labels (model, sampler, seeds), so no number is ever wrapped or cut.  Best
values are bold, tied ones italic, reference rows (real-data floor, data entropy) dim, as in results.md.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from genbench.metrics.display import registry_displays
from genbench.report import build_boards
from genbench.report.formatting import Shown, display_rows
from genbench.results import rows_frame

if TYPE_CHECKING:
    from genbench.plugins import Registry
    from genbench.report.cells import Board, Table

MARK_STYLES = {"best": "bold", "tied": "italic", "": ""}
#: the width between two columns: one space of padding on each side and the separator (no outer edges)
COLUMN_OVERHEAD = 3
#: a header longer than this wraps at spaces (numbers never wrap)
LONGEST_HEADER_WORD = 14


def boards_of(rows: list[dict[str, Any]], registry: Registry) -> dict[str, Board]:
    """The report's boards (one per data set) of ``rows``, tiny-preset runs included (they are what just ran)."""
    if not rows:
        return {}
    return build_boards(rows_frame(rows), registry_displays(registry), include_tiny=True)


def _width(header: str, cells: list[Shown]) -> int:
    """The width a column needs: its widest value, and its header up to LONGEST_HEADER_WORD (a longer header
    wraps at spaces)."""
    return max([min(cell_len(header), LONGEST_HEADER_WORD), *(cell_len(s.text) for s in cells)])


def column_chunks(header: list[str], body: list[list[Shown]], width: int) -> list[list[int]]:
    """Value-column indices split into runs that fit ``width`` beside the row-label columns (at least one each)."""
    n_labels = header.index("seeds") + 1 if "seeds" in header else 1
    need = [_width(h, [line[i] for line in body]) for i, h in enumerate(header)]
    room = width - (sum(need[:n_labels]) + COLUMN_OVERHEAD * (n_labels - 1))  # what the value columns may take
    chunks: list[list[int]] = []
    used = room + 1
    for i in range(n_labels, len(header)):
        if not chunks or used + need[i] + COLUMN_OVERHEAD > room:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += need[i] + COLUMN_OVERHEAD
    return chunks


def rich_tables(t: Table, width: int) -> list[RichTable]:
    """One board table as rich tables no wider than ``width`` (more than one when its columns do not fit)."""
    header, body = display_rows(t)
    n_labels = header.index("seeds") + 1 if "seeds" in header else 1
    chunks = column_chunks(header, body, width) or [[]]
    out = []
    for k, chunk in enumerate(chunks):
        title = t.title if len(chunks) == 1 else f"{t.title} ({k + 1}/{len(chunks)})"
        table = RichTable(title=Text(title), title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                          pad_edge=False, show_edge=False)
        for i in [*range(n_labels), *chunk]:
            numeric = i >= n_labels or header[i] == "seeds"
            # a Text header: "[pixels]" / "[classifier]" are extractor tags, not Rich markup to be swallowed
            table.add_column(Text(header[i]), justify="right" if numeric else "left", overflow="fold",
                             width=_width(header[i], [line[i] for line in body]))
        for r, line in enumerate(body):
            style = "dim" if t.rows[r].role == "floor" else ""
            table.add_row(*[Text(line[i].text, style=MARK_STYLES[line[i].mark]) for i in [*range(n_labels), *chunk]],
                          style=style)
        out.append(table)
    return out


def print_summary(rows: list[dict[str, Any]], registry: Registry, console: Console | None = None) -> bool:
    """Print the leaderboards of ``rows`` (quality, likelihood, cost per data set) on ``console`` (default: the
    terminal, at its width).  Returns False when there was nothing to show."""
    return print_boards(boards_of(rows, registry), console or Console())


def print_boards(boards: dict[str, Board], console: Console) -> bool:
    """Print boards (``boards_of``) on ``console`` at its width; False when there is none."""
    if not boards:
        return False
    for board in boards.values():
        console.print(Text(f"{board.dataset}", style="bold underline"))
        if board.entropy is not None:
            console.print(f"Data entropy (no model may go below): {board.entropy:.4f} bits/dim.")
        for t in board.tables:
            for table in rich_tables(t, console.width):
                console.print(table)
    console.print("Best values in bold, tied ones in italic; ± is a 95% interval (see the report for how it is made).")
    return True


def summary_text(rows: list[dict[str, Any]], registry: Registry, width: int = 100) -> str:
    """The summary as plain text at ``width`` columns (no colours): what a log file or a test sees."""
    return boards_text(boards_of(rows, registry), width)


def boards_text(boards: dict[str, Board], width: int = 100) -> str:
    """Boards as plain text at ``width`` columns."""
    buf = io.StringIO()
    print_boards(boards, Console(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()
