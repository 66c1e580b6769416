"""Leaderboards from tidy rows: rows per model and sampler, reference rows, roles, presets, CIs over runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from report_fakes import HOSTILE, MODELS, make_runs, write_run

from genbench.report.board import FLOOR_LABEL, build_boards
from genbench.report.inputs import load_runs
from genbench.report.formatting import MISSING
from genbench.report.intervals import ci95
from genbench.report.markdown import to_markdown


@pytest.fixture(scope="module")
def board(demo_runs: Path, displays):
    frame, _ = load_runs(demo_runs / "runs")
    return frame, build_boards(frame, displays)["digits"]


def _table(board, name):
    return next(t for t in board.tables if t.name == name)


def test_quality_table_has_a_row_per_model_and_sampler_and_the_references(board) -> None:
    frame, b = board
    t = _table(b, "quality")
    keys = [(r.model, r.sampler, r.role) for r in t.rows]
    expected = {(m, s) for m, (samplers, _) in MODELS.items() for s in samplers}
    assert {(m, s) for m, s, role in keys if role != "floor"} >= expected
    assert (HOSTILE, "<img src=x onerror=alert(2)>", "model") in keys
    assert [k for k in keys if k[2] == "baseline"] == [("independent", "default", "baseline")]  # its rows say so
    assert keys[-1] == (FLOOR_LABEL, "", "floor")
    # the floor cell is the mean of the per-run fid_floor values
    fid_col = next(i for i, c in enumerate(t.columns) if c.metric == "fid")
    floor = frame[frame["metric"] == "fid_floor"].groupby("run_id")["value"].mean().mean()
    assert t.cell(len(t.rows) - 1, fid_col).mean == pytest.approx(floor)


def test_best_is_the_lowest_mean_fid_and_the_cis_are_over_seeds(board) -> None:
    """Without within-run standard errors the interval is the plain Student t over seeds; the lowest mean is marked
    best only where its interval clears the runner-up's, else the group overlapping it is marked tied."""
    frame, b = board
    t = _table(b, "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    fid = frame[frame["metric"] == "fid"].groupby(["model", "sampler"])["value"]
    means, cis = fid.mean(), fid.apply(lambda v: ci95(v.to_numpy()))
    order = means.sort_values().index
    best, runner = order[0], order[1]
    separated = means[best] + cis[best] < means[runner] - cis[runner]
    for r, row in enumerate(t.rows):
        cell = t.cell(r, c)
        if row.role == "floor":
            assert cell.mark == ""
            continue
        key = (row.model, row.sampler)
        assert cell.mean == pytest.approx(means[key])
        assert cell.ci == pytest.approx(cis[key]) and cell.method == "t"
        assert cell.seeds == 3
        if separated:
            assert (cell.mark == "best") == (key == best)
        else:
            tied = means[key] - cis[key] <= means[best] + cis[best]
            assert cell.mark == ("tied" if tied else "")


def test_missing_capability_is_a_dash_never_zero(board) -> None:
    _, b = board
    t = _table(b, "likelihood")
    gan = next(r for r, row in enumerate(t.rows) if row.model == "gan")
    assert all(t.cell(gan, c) is None for c in range(len(t.columns)))
    md = to_markdown(b)
    gan_line = next(line for line in md.splitlines() if line.startswith("| gan |") and "—" in line and "±" not in line)
    assert gan_line.count(MISSING) == len(t.columns)


def test_models_ordered_by_best_fid_baseline_last(board) -> None:
    _, b = board
    order = list(dict.fromkeys(r.model for r in _table(b, "quality").rows if r.role != "floor"))
    assert order[0] == "ddpm" and order[-1] == "independent"


def test_leaderboard_of_several_datasets(tmp_path: Path, displays) -> None:
    make_runs(tmp_path, seeds=(0,))
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0}, dataset="other")
    frame, _ = load_runs(tmp_path / "runs")
    boards = build_boards(frame, displays)
    assert set(boards) == {"digits", "other"}
    assert [r.model for r in _table(boards["other"], "quality").rows] == ["vae", FLOOR_LABEL]
    one_seed = _table(boards["digits"], "quality").cell(0, 0)
    assert one_seed.seeds == 1 and math.isnan(one_seed.ci)


def test_floor_rows_are_split_by_sample_size(tmp_path: Path, displays) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0})
    write_run(tmp_path, "gan", 0, {"default": (5.0, 10.0, 1)}, {})
    frame, _ = load_runs(tmp_path / "runs")
    frame.loc[(frame["model"] == "gan") & (frame["metric"] == "fid_floor"), ["n", "value"]] = [16, 40.0]
    t = _table(build_boards(frame, displays)["digits"], "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    floors = {row.model: t.cell(r, c).mean for r, row in enumerate(t.rows) if row.role == "floor"}
    vae_floor = frame[(frame["model"] == "vae") & (frame["metric"] == "fid_floor")]["value"].iloc[0]
    assert floors == {"real data (floor, n=16)": 40.0, "real data (floor, n=1000)": pytest.approx(vae_floor)}


def test_a_floor_of_other_extractor_weights_gets_its_own_row(tmp_path: Path, displays) -> None:
    """Two machines' fits of the classifier: same seed, floors equal to 6 digits, different weights.  Pooled as two
    draws of one seed, the floor's interval would shrink by sqrt(2); each set of weights keeps its own floor row,
    with its own interval, beside the model rows scored with it."""
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0})
    write_run(tmp_path, "ddpm", 0, {"default": (7.0, 10.0, 1)}, {"VLB": 1.0})
    write_run(tmp_path, "gan", 0, {"default": (5.0, 10.0, 1)}, {})
    frame, _ = load_runs(tmp_path / "runs")
    gan = (frame["model"] == "gan") & (frame["extractor"] != "")
    frame.loc[gan, "extractor_sha256"] = "another-fit"
    is_floor = frame["metric"] == "fid_floor"
    frame.loc[is_floor, ["value", "stderr"]] = [2.0, 0.5]  # one seed: the same real images in every run
    frame.loc[is_floor & gan, "value"] = 2.0 + 3e-6
    t = _table(build_boards(frame, displays)["digits"], "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    floors = {row.model: t.cell(r, c) for r, row in enumerate(t.rows) if row.role == "floor"}
    assert set(floors) == {FLOOR_LABEL, "real data (floor, other classifier weights)"}
    fl = frame[(frame["metric"] == "fid_floor")]
    for label, models in ((FLOOR_LABEL, {"vae", "ddpm"}), ("real data (floor, other classifier weights)", {"gan"})):
        own = fl[fl["model"].isin(models)]
        assert floors[label].mean == pytest.approx(own["value"].mean())
        assert floors[label].ci == pytest.approx(1.959964 * own["stderr"].iloc[0], rel=1e-4)  # one seed: its own se
    tags = {row.model: row.tag for row in t.rows if row.role == "model"}
    assert tags == {"vae": "", "ddpm": "", "gan": "other classifier weights"}


def test_presets_are_never_averaged_together(tmp_path: Path, displays) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    write_run(tmp_path, "vae", 1, {"default": (20.0, 10.0, 1)}, {"ELBO": 3.0}, run_id="vae-digits-s1-tiny")
    write_run(tmp_path, "independent", 0, {"default": (28.0, 10.0, 1)}, {"exact": 2.4})
    frame, _ = load_runs(tmp_path / "runs")
    frame.loc[frame["run_id"] == "vae-digits-s1-tiny", "preset"] = "tiny"
    t = _table(build_boards(frame, displays)["digits"], "likelihood")
    assert {row.model for row in t.rows} == {"vae", "independent"}  # tiny results stay out unless asked for
    t = _table(build_boards(frame, displays, include_tiny=True)["digits"], "likelihood")
    names = {row.model: row.role for row in t.rows}
    assert names == {"vae [quick]": "model", "vae [tiny]": "model", "independent": "baseline"}
    c = next(i for i, col in enumerate(t.columns) if col.kind == "ELBO")
    means = {row.model: t.cell(r, c).mean for r, row in enumerate(t.rows) if t.cell(r, c)}
    assert means["vae [quick]"] == pytest.approx(2.0, rel=0.05) and means["vae [tiny]"] == pytest.approx(3.0, rel=0.05)


def test_role_comes_from_the_rows_or_the_baseline_option(tmp_path: Path, displays) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    write_run(tmp_path, "uniform", 0, {"default": (90.0, 10.0, 1)}, {"exact": 4.0}, role="baseline")
    write_run(tmp_path, "independent", 0, {"default": (28.0, 10.0, 1)}, {"exact": 2.4}, role="model")
    frame, _ = load_runs(tmp_path / "runs")
    roles = {r.model: r.role for r in _table(build_boards(frame, displays)["digits"], "quality").rows}
    assert roles == {"vae": "model", "independent": "model", "uniform": "baseline", FLOOR_LABEL: "floor"}
    rows = [r.model for r in _table(build_boards(frame, displays)["digits"], "quality").rows]
    assert rows[-2] == "uniform"  # baselines after the models, before the floor
    old = frame.drop(columns=["role"])  # runs written before rows carried a role: every row is a model's
    roles = {r.model: r.role for r in _table(build_boards(old, displays, baseline="independent")["digits"], "quality").rows}
    assert roles["independent"] == "baseline" and roles["uniform"] == "model"


def test_sampling_seeds_average_within_a_run(tmp_path: Path, displays) -> None:
    """A run that drew its sampler three times is one seed: its cell is the mean over runs of per-run means."""
    for seed in (0, 1):
        run = write_run(tmp_path, "gan", seed, {"default": (5.0, 10.0, 1)}, {})
        rows = json.loads((run / "rows.json").read_text())
        fid = next(r for r in rows if r["metric"] == "fid")
        extra = [{**fid, "sampling_seed": k, "value": fid["value"] + k} for k in (1, 2)]
        (run / "rows.json").write_text(json.dumps(rows + extra))
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    frame, _ = load_runs(tmp_path / "runs")
    t = _table(build_boards(frame, displays)["digits"], "quality")
    c = next(i for i, col in enumerate(t.columns) if col.metric == "fid")
    gan = next(r for r, row in enumerate(t.rows) if row.model == "gan")
    fid = frame[(frame["model"] == "gan") & (frame["metric"] == "fid")]
    per_run = fid.groupby("run_id")["value"].mean()
    assert t.cell(gan, c).seeds == 2
    assert t.cell(gan, c).mean == pytest.approx(per_run.mean()) and t.cell(gan, c).ci == pytest.approx(ci95(per_run.to_numpy()))
    assert isinstance(frame, pd.DataFrame)
