"""results.tex: booktabs table floats (caption, label, rules), escaped text, marks as \\textbf / \\underline; the
shape pdflatex needs is checked without TeX."""
from __future__ import annotations

import re

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


def _unescaped(text: str, ch: str) -> int:
    return len(re.findall(r"(?<!\\)" + re.escape(ch), text))


def _floats(tex: str) -> list[str]:
    return re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, flags=re.S)


def assert_compiles_shaped(tex: str) -> None:
    """What pdflatex would reject, checked without TeX: balanced braces and environments, one booktabs tabular per
    float with a caption and a label, as many cells in every row as the column spec says, no zero-width ±."""
    assert _unescaped(tex, "{") == _unescaped(tex, "}")
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == len(_floats(tex)) > 0
    labels = re.findall(r"\\label\{([^}]*)\}", tex)
    assert len(labels) == len(set(labels)) == len(_floats(tex)) and all(re.fullmatch(r"[a-z0-9:-]+", x) for x in labels)
    for block in _floats(tex):
        assert block.count(r"\begin{tabular}") == block.count(r"\end{tabular}") == 1
        assert block.count(r"\caption{") == 1 and block.count(r"\toprule") == block.count(r"\bottomrule") == 1
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", block).group(1)
        body = block[block.index(r"\toprule"):block.index(r"\bottomrule")]
        lines = [x for x in body.splitlines() if x.endswith(r"\\")]
        assert lines and all(_unescaped(x, "&") == len(spec) - 1 for x in lines), spec
        assert not re.search(r"\\pm\$ 0\.0+(?![0-9]*[1-9])", block)


def test_tables_are_floats_with_caption_label_and_rules(demo_runs, displays) -> None:
    from genbench.report.board import build_boards
    from genbench.report.inputs import load_runs

    frame, _ = load_runs(demo_runs / "runs")
    tex = to_latex(build_boards(frame, displays)["digits"])
    assert_compiles_shaped(tex)
    assert r"\caption{digits: Sample quality (preset quick, n=1000). $\pm$ is the half-width of a 95\% interval" in tex
    assert r"\label{tab:genbench-digits-quality}" in tex and r"\usepackage{booktabs}" in tex


def test_marks_tags_and_hostile_names_keep_the_shape() -> None:
    cols = [Column("fid", "", "", "FID ×10³ [x_1]", False, False), Column("kid", "", "", "KID − floor", False, False)]
    t = Table("quality", "Sample quality", cols,
              [Row("[a] & {b}", "s%", "model", 2), Row("c", "s", "model", 2), Row("e", "s", "model", 1, flag="possible memorisation"),
               Row("d", "s", "model", 1, apart=True, tag="tiny, n=8"), Row("real data (floor)", "", "floor", 1)],
              setting="preset quick, n=1000")
    t.cells[(0, 0)] = Cell(3.0, 0.5, 2, mark="tied", method="t")
    t.cells[(1, 0)] = Cell(3.2, 0.5, 2, mark="tied", method="t")
    t.cells[(3, 0)] = Cell(0.1, 1e-9, 1, method="normal")  # rounds to zero: no ±
    t.cells[(2, 1)] = Cell(5.0, 0.1, 1, mark="best", method="normal")
    tex = to_latex(Board("digits & co", [t], [], None))
    assert_compiles_shaped(tex)
    assert r"{[}a{]} \& \{b\} & s\% & 2 & \underline{3.00 $\pm$ 0.50}" in tex
    assert r"FID $\times$10$^{3}$ {[}x\_1{]} $\downarrow$ & KID $-$ floor $\downarrow$" in tex
    assert r"d (tiny, n=8) & s & 1 & 0.1000 & --- \\" in tex and r"e {[}possible memorisation{]}" in tex
    assert r"\textbf{5.00 $\pm$ 0.10}" in tex
    assert tex.count(r"\midrule") == 3  # after the header, before the rows kept apart, before the reference rows
    assert r"\label{tab:genbench-digits-co-quality}" in tex
