"""results.md: escaped names, marks as emphasis (never parsed back from the text), dashes for missing values."""
from __future__ import annotations

from genbench.report.cells import Board, Cell, Column, Row, Table
from genbench.report.markdown import md_escape, to_markdown


def _board(model: str = "a") -> Board:
    t = Table("quality", "Sample quality", [Column("fid", "", "", "FID", False, False)],
              [Row(model, "s", "model", 2), Row("b", "s", "baseline", 2), Row("c", "s", "model", 2)])
    t.cells[(0, 0)] = Cell(3.0, 0.5, 2, mark="best")
    t.cells[(1, 0)] = Cell(4.0, 0.5, 2, mark="tied")
    return Board("digits", [t], [], 1.5)


def test_marks_become_emphasis_and_missing_is_a_dash() -> None:
    md = to_markdown(_board())
    assert "| a | s | 2 | **3.00 ± 0.50** |" in md
    assert "| b (baseline) | s | 2 | *4.00 ± 0.50* |" in md
    assert "| c | s | 2 | — |" in md
    assert "|---|---|--:|--:|" in md and "#### Sample quality" in md
    assert "Data entropy (no model may go below): 1.5000 bits/dim." in md


def test_a_name_that_looks_bold_stays_text() -> None:
    md = to_markdown(_board("**x**"))
    assert "| \\*\\*x\\*\\* | s | 2 | **3.00 ± 0.50** |" in md


def test_escape() -> None:
    assert md_escape("<script>|a_b*`") == "&lt;script&gt;\\|a\\_b\\*\\`"


def test_markdown_escapes_hostile_names(demo_runs, displays) -> None:
    from report_fakes import HOSTILE

    from genbench.report.board import build_boards
    from genbench.report.inputs import load_runs

    frame, _ = load_runs(demo_runs / "runs")
    md = to_markdown(build_boards(frame, displays)["digits"])
    assert HOSTILE not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
