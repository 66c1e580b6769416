"""Verdicts: stars only where intervals separate, comparable rows only, FID / floor, memorisation flags."""
from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path

import pandas as pd
import pytest
from report_fakes import write_run

from genbench.metrics.base import Measurement
from genbench.report import write_report
from genbench.report.board import build_boards
from genbench.report.derived import FID_OVER_FLOOR
from genbench.report.formatting import TIE_SENTENCE
from genbench.report.export import results_json, table_records
from genbench.report.inputs import load_runs
from genbench.report.latex import to_latex
from genbench.report.markdown import to_markdown
from genbench.report.memorisation import FLAG
from genbench.report.page import DatasetView
from genbench.report.page_board import board_html

MEMO = ("exact_copies", "exact_copies_floor", "closer_than_p5", "closer_than_p5_floor", "fid_train")


def _html(board) -> str:
    """The board's section of the page (no figures: fast)."""
    return board_html(DatasetView(board, [], None, "", []))


def _quality(frame: pd.DataFrame, displays, **kw):
    b = build_boards(frame, displays, **kw)["digits"]
    return b, next(t for t in b.tables if t.name == "quality")


def _cells(t, metric: str) -> dict[str, object]:
    c = next(i for i, col in enumerate(t.columns) if col.metric == metric)
    return {row.model: t.cell(r, c) for r, row in enumerate(t.rows) if t.cell(r, c) is not None}


def test_overlapping_intervals_are_not_starred(tmp_path: Path, displays) -> None:
    """One seed each: ± 1.96 se from the rows.  a (5.0 ± 0.98) and b (5.6 ± 1.1) overlap: tied, never best; c is far
    behind: no mark.  With the noise ten times smaller, a is best alone."""
    for model, fid in (("a", 5.0), ("b", 5.6), ("c", 20.0)):
        write_run(tmp_path / "wide", model, 0, {"s": (fid, 10.0, 1)}, {}, sample_stderr=0.1, jitter_rel=0.0)
        write_run(tmp_path / "narrow", model, 0, {"s": (fid, 10.0, 1)}, {}, sample_stderr=0.01, jitter_rel=0.0)
    frame, _ = load_runs(tmp_path / "wide" / "runs")
    _, t = _quality(frame, displays)
    fid = _cells(t, "fid")
    assert {m: c.mark for m, c in fid.items()} == {"a": "tied", "b": "tied", "c": "", "real data (floor)": ""}
    assert fid["a"].method == "normal" and fid["a"].ci == pytest.approx(1.959963984540054 * 0.5)
    frame, _ = load_runs(tmp_path / "narrow" / "runs")
    _, t = _quality(frame, displays)
    assert {m: c.mark for m, c in _cells(t, "fid").items()} == {"a": "best", "b": "", "c": "", "real data (floor)": ""}
    frame, _ = load_runs(tmp_path / "wide" / "runs")
    b, _ = _quality(frame, displays)
    quality = _html(b).split('data-table="quality"')[1].split("</table>")[0]
    assert quality.count('class="num tied"') >= 2 and "tied with the best: the 95% intervals overlap" in quality
    fid = {r["model"]: r for r in table_records(b) if r["metric"] == "fid"}
    assert fid["a"]["tied"] and fid["b"]["tied"] and not fid["a"]["best"] and fid["a"]["interval"] == "normal"
    md = to_markdown(b)
    assert "| a | s | 1 | *5.00 ± 0.98* |" in md
    # the text says how to read a tie, next to the tables and in the legend
    assert TIE_SENTENCE in md and "*italics*: tied with the best" in md
    assert html_escape(TIE_SENTENCE, quote=True) in _html(b) and "≈ tied" in _html(b)


def test_tiny_and_quick_rows_are_never_ranked_together(tmp_path: Path, displays) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    write_run(tmp_path, "ddpm", 0, {"default": (5.0, 10.0, 1)}, {"VLB": 2.5})
    write_run(tmp_path, "gan", 0, {"default": (0.5, 10.0, 1)}, {}, preset="tiny", n=8, run_id="gan-tiny")
    write_run(tmp_path, "pixelcnn", 0, {"default": (0.4, 10.0, 1)}, {}, n=500, run_id="pixelcnn-n500")
    frame, _ = load_runs(tmp_path / "runs")
    b, t = _quality(frame, displays)
    assert "gan" not in {r.model for r in t.rows}  # tiny results stay out of leaderboards by default
    b, t = _quality(frame, displays, include_tiny=True)
    rows = {r.model: r for r in t.rows}
    assert rows["gan"].apart and rows["gan"].tag == "tiny, n=8"
    assert rows["pixelcnn"].apart and rows["pixelcnn"].tag == "n=500"
    assert not rows["vae"].apart and not rows["ddpm"].apart and t.setting == "preset quick, n=1000"
    fid = _cells(t, "fid")
    assert fid["gan"].mark == fid["pixelcnn"].mark == ""  # lowest FIDs, measured differently: never marked
    assert fid["ddpm"].mark == "best"  # points (no standard error): 5.0 vs 9.0 separate
    order = [r.model for r in t.rows]
    assert order.index("vae") < order.index("gan") < order.index("real data (floor, n=1000)")
    likelihood = next(x for x in b.tables if x.name == "likelihood")
    assert {r.model: r.tag for r in likelihood.rows if r.apart} == {"gan": "tiny"}  # no value there, still apart
    md = to_markdown(b)
    assert "| gan (tiny, n=8) | default | 1 |" in md and "**0.5" not in md
    apart = _html(b).split('data-table="quality"')[1].split('<tbody class="apart">')[1].split("</tbody>")[0]
    assert "Not ranked" in apart and "tiny, n=8" in apart and "n=500" in apart and " best" not in apart


def test_likelihood_of_one_run_shows_its_standard_error(tmp_path: Path, displays) -> None:
    """The standard run's VLB: 6.374 with standard error 2.075 is shown as 6.4 ± 4.1 (1.96 se)."""
    write_run(tmp_path, "ddpm", 0, {"default": (5.0, 10.0, 1)}, {"VLB": 6.374}, stderr=2.075, jitter_rel=0.0)
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.95}, stderr=0.015, jitter_rel=0.0)
    frame, _ = load_runs(tmp_path / "runs")
    md = to_markdown(build_boards(frame, displays)["digits"])
    assert "| ddpm | 1 | — | 6.4 ± 4.1 |" in md
    assert "one training seed: mean ± 1.96 standard errors" in md


def test_no_zero_width_interval_is_printed_and_captions_match(tmp_path: Path, displays) -> None:
    """Identical values over seeds (steps, a floor of one seed) print without ±; a caption names only the intervals
    its table shows."""
    for seed in (0, 1, 2):
        for model in ("vae", "gan"):
            write_run(tmp_path, model, seed, {"default": (9.0 if model == "vae" else 5.0, 10.0, 1)}, {},
                      sample_stderr=0.02)
    frame, _ = load_runs(tmp_path / "runs")
    b = build_boards(frame, displays)["digits"]
    texts = [to_markdown(b), to_latex(b), _html(b)]
    for text in texts:
        assert not re.search(r"(±|\\pm\$?) ?0\.0+\b(?!\d*[1-9])", text)
    md = texts[0]
    assert "several training seeds: mean ± Student-t 95% interval over the seeds" in md
    assert "one training seed" not in md.split("#### Sample quality")[1].split("####")[0]


def _kid(value: float, floor: float) -> list[Measurement]:
    return [Measurement("kid", value, "", False, n=1000, stderr=0.0004, sampler="default", extractor="classifier"),
            Measurement("kid_floor", floor, "", False, n=1000, stderr=0.0003, sampler="real data", extractor="classifier")]


def test_fid_over_floor_is_a_column_everywhere(tmp_path: Path, registry, displays) -> None:
    """FID / floor and KID - floor, with intervals, in the board, results.md/.tex/.csv/.json and the page."""
    for seed in (0, 1):
        write_run(tmp_path, "vae", seed, {"default": (9.0, 10.0, 1)}, {}, sample_stderr=0.05, extra=_kid(0.006, 0.001))
        write_run(tmp_path, "gan", seed, {"default": (5.0, 10.0, 1)}, {}, sample_stderr=0.05, extra=_kid(0.003, 0.0012))
    frame, _ = load_runs(tmp_path / "runs")
    _, t = _quality(frame, displays)
    ratio = _cells(t, FID_OVER_FLOOR)
    per_run = (frame[frame["metric"] == "fid"].set_index("run_id")["value"]
               / frame[frame["metric"] == "fid_floor"].set_index("run_id")["value"])
    vae_runs = frame.loc[frame["model"] == "vae", "run_id"].unique()
    assert ratio["vae"].mean == pytest.approx(per_run[vae_runs].mean()) and ratio["vae"].seeds == 2
    assert ratio["real data (floor)"].mean == 1.0
    kid = _cells(t, "kid_minus_floor")
    assert kid["vae"].mean == pytest.approx(0.005) and kid["gan"].mean == pytest.approx(0.0018)
    # two seeds with identical values: the interval is the runs' own noise, 1.96 sqrt(0.0004^2 + 0.0003^2) / sqrt(2)
    assert kid["vae"].ci == pytest.approx(1.959963984540054 * 0.0005 / 2 ** 0.5) and kid["gan"].mark == "best"
    index = write_report(tmp_path, registry=registry)
    out = index.parent
    md = (out / "results.md").read_text()
    assert "FID / floor" in index.read_text() and "FID / floor ↓" in md
    assert "KID − floor ×10³ ↓" in md and "**1.80 ± 0.69**" in md and "| 5.00 ± 0.69 |" in md
    assert r"FID / floor $\downarrow$" in (out / "results.tex").read_text()
    assert (pd.read_csv(out / "results.csv")["metric"] == FID_OVER_FLOOR).sum() == 4
    board = [r for r in json.loads((out / "results.json").read_text())["leaderboard"] if r["metric"] == FID_OVER_FLOOR]
    assert {r["model"] for r in board} >= {"vae", "gan"} and all(r["ci95"] for r in board if r["model"] == "vae")


def _memorising(root: Path, model: str, fid: float, share: float, n: int, copies: float = 0.0) -> None:
    """Rows as genbench.metrics.memorisation writes them (pixel space; 300 test images set the threshold)."""
    details = {"expected_share": 0.05, "n_test_reference": 300, "space": "pixels"}
    extra = [Measurement("closer_than_p5", share, "fraction", None, n=n, stderr=(share * (1 - share) / n) ** 0.5,
                         sampler="default", details=details),
             Measurement("exact_copies", copies, "fraction", False, n=n, sampler="default"),
             Measurement("closer_than_p5_floor", 0.05, "fraction", None, n=300, sampler="real data", details=details)]
    write_run(root, model, 0, {"default": (fid, 10.0, 1)}, {}, sample_stderr=0.03, extra=extra, jitter_rel=0.0)


@pytest.mark.parametrize("declared", [True, False])
def test_a_copying_model_is_flagged_and_real_validation_data_is_not(tmp_path: Path, displays, declared: bool) -> None:
    """copier: FID below the floor (0.97) and 60% of 1000 samples closer than p5 -> flagged.  validation (real
    images as a "model"): FID at the floor, 6% of 300 (0.5 standard errors above 5%) -> not flagged.  far: closer
    than p5 too, but its FID is far above the floor -> not flagged; honest: neither.  ``declared``: the registry
    knows the memorisation metric (else its rows are placed from themselves and still recognised)."""
    _memorising(tmp_path, "copier", 0.90, 0.60, 1000, copies=0.3)
    _memorising(tmp_path, "validation", 0.98, 0.06, 300)
    _memorising(tmp_path, "far", 9.0, 0.60, 1000)
    _memorising(tmp_path, "honest", 3.0, 0.04, 1000)
    frame, _ = load_runs(tmp_path / "runs")
    known = displays if declared else {k: v for k, v in displays.items() if k not in MEMO}
    b, t = _quality(frame, known)
    assert [(f["model"], f["sampler"]) for f in b.memorisation] == [("copier", "default")]
    flag = b.memorisation[0]
    se0 = (0.05 * 0.95 * (1 / 1000 + 1 / 300)) ** 0.5  # the share's spread for real images, threshold noise included
    assert flag["share"] == pytest.approx(0.60) and flag["sigmas_above"] == pytest.approx(0.55 / se0)
    assert {r.model: r.flag for r in t.rows if r.role != "floor"} == {"copier": FLAG, "validation": "", "far": "",
                                                                       "honest": ""}
    if declared:
        memo = next(x for x in b.tables if x.name == "memorisation")
        assert [c.metric for c in memo.columns] == ["exact_copies", "closer_than_p5"]
        assert memo.rows[-1].role == "floor" and memo.cell(len(memo.rows) - 1, 1).mean == pytest.approx(0.05)
        assert {r.model: r.flag for r in memo.rows if r.role != "floor"}["copier"] == FLAG
    md = to_markdown(b)
    assert "**Possible memorisation: copier (default)**" in md and "copier [possible memorisation]" in md
    assert "Possible memorisation." in _html(b)
    data = json.loads(results_json(frame, {"digits": b}, [], [], "now", {}))
    assert [f["model"] for f in data["memorisation"]] == ["copier"]
