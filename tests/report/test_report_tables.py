"""Leaderboard numbers: CI closed form, formatting, best marks, reference rows, validity, Pareto front."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fakes import HOSTILE, MODELS, make_runs, write_run

from genbench.report.plots import CostPoint, fid_axis_is_log, pareto_front, quality_cost_png
from genbench.report.tables import ENTROPY_LABEL, FLOOR_LABEL, MISSING, build_boards, ci95, fmt_value, to_latex, to_markdown
from genbench.results import load_runs


def test_ci95_matches_student_t_closed_form() -> None:
    # n=3, sd=1, t_{0.975,2} = 4.302652729911275 (tables); half-width = t * sd / sqrt(n)
    assert ci95(np.array([1.0, 2.0, 3.0])) == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    # n=2: t_{0.975,1} = 12.706204736174698; sd = sqrt(2)/2*|a-b|... for (0, 2): sd = sqrt(2)
    assert ci95(np.array([0.0, 2.0])) == pytest.approx(12.706204736174698 * math.sqrt(2) / math.sqrt(2), rel=1e-9)
    assert math.isnan(ci95(np.array([5.0])))
    assert math.isnan(ci95(np.array([5.0, float("nan")])))


@pytest.mark.parametrize("mean, ci, text", [
    (28.75, 3.5, "28.8 ± 3.5"),
    (2.43322, 1.5e-5, "2.433220 ± 0.000015"),
    (477_200.0, 20_000.0, "477k ± 20k"),
    (1.2e9, 3e7, "1.200G ± 0.030G"),
    (100.0, 0.0, "100"),
    (1.0, float("nan"), "1"),
    (0.97512, float("nan"), "0.9751"),
    (float("nan"), 1.0, MISSING),
])
def test_fmt_value(mean: float, ci: float, text: str) -> None:
    assert fmt_value(mean, ci) == text


@pytest.fixture(scope="module")
def board(demo_runs: Path):
    frame, _ = load_runs(demo_runs / "runs")
    return frame, build_boards(frame)["digits"]


def _table(board, name):
    return next(t for t in board.tables if t.name == name)


def test_quality_table_has_a_row_per_model_and_sampler_and_the_references(board) -> None:
    frame, b = board
    t = _table(b, "quality")
    keys = [(r.model, r.sampler, r.role) for r in t.rows]
    expected = {(m, s) for m, (samplers, _) in MODELS.items() for s in samplers}
    assert {(m, s) for m, s, role in keys if role != "floor"} >= expected
    assert (HOSTILE, "<img src=x onerror=alert(2)>", "model") in keys
    assert [k for k in keys if k[2] == "baseline"] == [("independent", "default", "baseline")]
    assert keys[-1] == (FLOOR_LABEL, "", "floor")
    # the floor cell is the mean of the per-run fid_floor values
    fid_col = next(i for i, c in enumerate(t.columns) if c.metric == "fid")
    floor = frame[frame["metric"] == "fid_floor"].groupby("run_id")["value"].mean().mean()
    assert t.cell(len(t.rows) - 1, fid_col).mean == pytest.approx(floor)


def test_best_is_the_lowest_mean_fid_and_the_cis_are_over_seeds(board) -> None:
    frame, b = board
    t = _table(b, "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    fid = frame[frame["metric"] == "fid"].groupby(["model", "sampler"])["value"]
    means, cis = fid.mean(), fid.apply(lambda v: ci95(v.to_numpy()))
    best_key = means.idxmin()
    for r, row in enumerate(t.rows):
        if row.role == "floor":
            assert not t.cell(r, c).best
            continue
        cell = t.cell(r, c)
        assert cell.mean == pytest.approx(means[(row.model, row.sampler)])
        assert cell.ci == pytest.approx(cis[(row.model, row.sampler)])
        assert cell.seeds == 3
        assert cell.best == ((row.model, row.sampler) == best_key)


def test_missing_capability_is_a_dash_never_zero(board) -> None:
    _, b = board
    t = _table(b, "likelihood")
    gan = next(r for r, row in enumerate(t.rows) if row.model == "gan")
    assert all(t.cell(gan, c) is None for c in range(len(t.columns)))
    md = to_markdown(b)
    gan_line = next(line for line in md.splitlines() if line.startswith("| gan |") and "—" in line and "±" not in line)
    assert gan_line.count(MISSING) == len(t.columns)


def test_markdown_and_latex_escape_names(board) -> None:
    _, b = board
    md, tex = to_markdown(b), to_latex(b)
    assert HOSTILE not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "<script>" not in tex and r"\textless{}script\textgreater{}" in tex
    assert r"\begin{tabular}" in tex and tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 3
    assert r"\textbf{" in tex  # best values


def test_bits_per_dim_below_the_data_entropy_is_invalid(tmp_path: Path) -> None:
    entropy = 1.60
    # cheat: 1.0 ± 0.01 is 60 standard errors below; honest: 1.59 ± 0.01 is 1 standard error below (noise)
    for seed in (0, 1):
        write_run(tmp_path, "cheat", seed, {"default": (5.0, 10.0, 1)}, {"exact": 1.0}, entropy=entropy, stderr=0.01)
        write_run(tmp_path, "honest", seed, {"default": (6.0, 10.0, 1)}, {"exact": 1.605}, entropy=entropy, stderr=0.01)
    frame, _ = load_runs(tmp_path / "runs")
    # the jitter of write_run is 1%: honest stays within 3 standard errors of 1.605 only if |jitter| small; pin it
    frame.loc[(frame["model"] == "honest") & (frame["metric"] == "bits_per_dim"), "value"] = 1.59
    b = build_boards(frame)["digits"]
    assert b.entropy == pytest.approx(entropy)
    assert {i["model"] for i in b.invalid} == {"cheat"}
    t = _table(b, "likelihood")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "bits_per_dim")
    cells = {row.model: t.cell(r, c) for r, row in enumerate(t.rows)}
    assert cells["cheat"].invalid and not cells["cheat"].best
    assert not cells["honest"].invalid
    assert cells[ENTROPY_LABEL].mean == pytest.approx(entropy)
    assert "INVALID" in to_markdown(b)


def test_pareto_front_closed_form() -> None:
    pts = [CostPoint("a", "", 1.0, 10.0), CostPoint("b", "", 2.0, 5.0), CostPoint("c", "", 3.0, 6.0),
           CostPoint("d", "", 0.5, 20.0), CostPoint("e", "", 4.0, 1.0), CostPoint("f", "", 2.0, 5.0),
           CostPoint("g", "", float("nan"), 0.1)]
    front = pareto_front(pts)
    # c is dominated by b (faster and better); f ties b exactly and stays; g has no cost
    assert [p.model for p in front] == ["d", "a", "b", "f", "e"]


def test_leaderboard_of_several_datasets_and_filters(tmp_path: Path) -> None:
    make_runs(tmp_path, seeds=(0,))
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0}, dataset="other")
    frame, _ = load_runs(tmp_path / "runs")
    boards = build_boards(frame)
    assert set(boards) == {"digits", "other"}
    assert [r.model for r in _table(boards["other"], "quality").rows] == ["vae", FLOOR_LABEL]
    one_seed = _table(boards["digits"], "quality").cell(0, 0)
    assert one_seed.seeds == 1 and math.isnan(one_seed.ci)
    assert isinstance(frame, pd.DataFrame)


def test_floor_rows_are_split_by_sample_size(tmp_path: Path) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0})
    write_run(tmp_path, "gan", 0, {"default": (5.0, 10.0, 1)}, {})
    frame, _ = load_runs(tmp_path / "runs")
    frame.loc[(frame["model"] == "gan") & (frame["metric"] == "fid_floor"), ["n", "value"]] = [16, 40.0]
    t = _table(build_boards(frame)["digits"], "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    floors = {row.model: t.cell(r, c).mean for r, row in enumerate(t.rows) if row.role == "floor"}
    vae_floor = frame[(frame["model"] == "vae") & (frame["metric"] == "fid_floor")]["value"].iloc[0]
    assert floors == {"real data (floor, n=16)": 40.0, "real data (floor, n=1000)": pytest.approx(vae_floor)}


def test_presets_are_never_averaged_together(tmp_path: Path) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    write_run(tmp_path, "vae", 1, {"default": (20.0, 10.0, 1)}, {"ELBO": 3.0}, run_id="vae-digits-s1-tiny")
    write_run(tmp_path, "independent", 0, {"default": (28.0, 10.0, 1)}, {"exact": 2.4})
    frame, _ = load_runs(tmp_path / "runs")
    frame.loc[frame["run_id"] == "vae-digits-s1-tiny", "preset"] = "tiny"
    t = _table(build_boards(frame)["digits"], "likelihood")
    names = {row.model: row.role for row in t.rows}
    assert names == {"vae [quick]": "model", "vae [tiny]": "model", "independent": "baseline"}
    c = next(i for i, col in enumerate(t.columns) if col.kind == "ELBO")
    means = {row.model: t.cell(r, c).mean for r, row in enumerate(t.rows) if t.cell(r, c)}
    assert means["vae [quick]"] == pytest.approx(2.0, rel=0.05) and means["vae [tiny]"] == pytest.approx(3.0, rel=0.05)


def test_fid_axis_turns_logarithmic_only_for_a_wide_positive_spread() -> None:
    models = [CostPoint("ddpm", "DDIM-50", 0.01, 4.0), CostPoint("vae", "draw", 1e-4, 6.0)]
    baseline = CostPoint("independent", "default", 1e-6, 140.0)
    floors = [(1000, 3.4)]
    assert not fid_axis_is_log(models, floors)  # 6 / 3.4: linear, from zero
    assert fid_axis_is_log(models + [baseline], floors)  # 140 / 3.4 > 20
    assert not fid_axis_is_log(models + [CostPoint("x", "y", 1.0, 0.0)] + [baseline], floors)  # 0 has no log
    for pts in (models, models + [baseline]):  # both kinds render
        assert quality_cost_png(pts, floors, "t", "independent").startswith(b"\x89PNG")


def test_labels_of_points_at_equal_cost_do_not_overlap() -> None:
    """Two markers at the same place get label boxes that do not intersect; a lone label keeps the default."""
    from genbench.report.plots import LABEL_OFFSETS, label_box, place_labels

    sizes = [(60.0, 9.0)] * 3
    offsets = place_labels([(100.0, 100.0), (100.0, 101.0), (400.0, 300.0)], sizes)
    assert offsets[0] == LABEL_OFFSETS[0] and offsets[2] == LABEL_OFFSETS[0]
    assert label_box((100.0, 100.0), (-6, 3), (60.0, 9.0)) == (34.0, 103.0, 94.0, 112.0)  # right-aligned
    a, b = label_box((100.0, 100.0), offsets[0], sizes[0]), label_box((100.0, 101.0), offsets[1], sizes[1])
    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    # nine labels on one spot: more than the candidates; each still gets one, the least-overlapping
    assert len(place_labels([(0.0, 0.0)] * 9, [(40.0, 9.0)] * 9)) == 9
