"""results.tex: booktabs tabulars, escaped text, marks as \\textbf / \\underline."""
from __future__ import annotations

from genbench.report.cells import Board, Cell, Column, Row, Table
from genbench.report.latex import tex_escape, to_latex


def test_tabular_marks_and_escapes() -> None:
    t = Table("quality", "Sample quality", [Column("fid", "", "", "FID", False, False)],
              [Row("<a>", "s_1", "model", 2), Row("b", "s", "model", 2), Row("c", "s", "model", 1)])
    t.cells[(0, 0)] = Cell(3.0, 0.5, 2, mark="best")
    t.cells[(1, 0)] = Cell(4.0, 0.5, 2, mark="tied")
    t.cells[(2, 0)] = Cell(1.0, seeds=1, invalid=True)
    tex = to_latex(Board("digits", [t, t], [], None))
    assert tex.count(r"\begin{tabular}{llrr}") == tex.count(r"\end{tabular}") == 2
    assert r"\textless{}a\textgreater{} & s\_1 & 2 & \textbf{3.00 $\pm$ 0.50} \\" in tex
    assert r"b & s & 2 & \underline{4.00 $\pm$ 0.50} \\" in tex
    assert r"c & s & 1 & 1 INVALID \\" in tex
    assert r"model & sampler & seeds & FID $\downarrow$ \\" in tex


def test_escape() -> None:
    assert tex_escape("50% & $x_1^2$ {~} ± —") == r"50\% \& \$x\_1\textasciicircum{}2\$ \{\textasciitilde{}\} $\pm$ ---"


def test_latex_of_the_demo_board(demo_runs, displays) -> None:
    from genbench.report.board import build_boards
    from genbench.report.inputs import load_runs

    frame, _ = load_runs(demo_runs / "runs")
    tex = to_latex(build_boards(frame, displays)["digits"])
    assert "<script>" not in tex and r"\textless{}script\textgreater{}" in tex
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 3
    assert r"\textbf{" in tex
