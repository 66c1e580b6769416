"""write_report: every output written; tidy CSV and JSON; filters; the CLI; an empty selection."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from report_fakes import MODELS, write_failed, write_run

from genbench.cli import main
from genbench.report import OUTPUTS, write_report
from genbench.report.inputs import load_runs


def test_all_outputs_are_written(demo_report: Path) -> None:
    for name in OUTPUTS:
        assert (demo_report.parent / name).stat().st_size > 0, name


def test_csv_and_json_hold_the_tidy_rows(demo_report: Path, demo_runs: Path) -> None:
    frame, statuses = load_runs(demo_runs / "runs")
    csv = pd.read_csv(demo_report.parent / "results.csv")
    assert list(csv.columns) == list(frame.columns)
    tidy, derived = csv.iloc[:len(frame)], csv.iloc[len(frame):]  # the tidy rows, then the derived ones
    assert list(tidy["metric"]) == list(frame["metric"]) and tidy["value"].to_numpy() == pytest.approx(frame["value"].to_numpy())
    n_fid = int((frame["metric"] == "fid").sum())
    assert derived["metric"].value_counts().to_dict() == {"fid_over_floor": n_fid}  # the fakes write no KID
    fid = frame[frame["metric"] == "fid"].iloc[0]
    floor = frame[(frame["metric"] == "fid_floor") & (frame["run_id"] == fid["run_id"])]["value"].iloc[0]
    assert derived["value"].iloc[0] == pytest.approx(fid["value"] / floor)
    data = json.loads((demo_report.parent / "results.json").read_text())
    assert len(data["rows"]) == len(csv)
    assert {f["run_id"] for f in data["failed"]} == {s["run_id"] for s in statuses if s["state"] != "done"}
    best = [r for r in data["leaderboard"] if r["best"] and r["metric"] == "fid"]
    assert [(r["model"], r["sampler"]) for r in best] == [("ddpm", "ancestral-1000")]


def test_filters_select_runs_models_and_datasets(tmp_path: Path, registry) -> None:
    for seed in (0, 1):
        for model in ("ddpm", "vae", "independent"):
            write_run(tmp_path, model, seed, MODELS[model][0], MODELS[model][1])
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0}, dataset="other")
    write_failed(tmp_path, "gan", "RuntimeError: boom")
    out = write_report(tmp_path, tmp_path / "a", models=["vae", "indep*"], registry=registry)
    rows = pd.read_csv(out.parent / "results.csv")
    assert set(rows["model"]) == {"vae", "independent"} and set(rows["dataset"]) == {"digits", "other"}
    assert "RuntimeError: boom" not in out.read_text()
    out = write_report(tmp_path, tmp_path / "b", datasets=["other"], registry=registry)
    assert set(pd.read_csv(out.parent / "results.csv")["dataset"]) == {"other"}
    assert "Real test images are not shown" in out.read_text()  # "other" is not a data set genbench knows
    out = write_report(tmp_path, tmp_path / "c", runs=["ddpm-digits-s0-*", "gan-*"], registry=registry)
    rows = pd.read_csv(out.parent / "results.csv")
    assert set(zip(rows["model"], rows["seed"])) == {("ddpm", 0)}
    assert "RuntimeError: boom" in out.read_text()


def test_baseline_option_marks_a_model_of_old_runs(tmp_path: Path, registry) -> None:
    write_run(tmp_path, "vae", 0, MODELS["vae"][0], MODELS["vae"][1], role="model")
    write_run(tmp_path, "gan", 0, MODELS["gan"][0], MODELS["gan"][1], role="model")
    md = (write_report(tmp_path, registry=registry).parent / "results.md").read_text()
    assert "(baseline)" not in md
    md = (write_report(tmp_path, baseline="gan", registry=registry).parent / "results.md").read_text()
    assert "| gan (baseline) | default |" in md


def test_cli_report(tmp_path: Path) -> None:
    write_run(tmp_path, "vae", 0, MODELS["vae"][0], MODELS["vae"][1])
    write_run(tmp_path, "gan", 0, MODELS["gan"][0], MODELS["gan"][1])
    write_run(tmp_path, "ddpm", 0, MODELS["ddpm"][0], MODELS["ddpm"][1], preset="tiny", n=8)
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "r"), "--models", "gan"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<h3>gan" in html and "<h3>vae" not in html
    assert f"genbench report {tmp_path} --out {tmp_path / 'r'} --models gan" in html
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0 and "ddpm" not in (tmp_path / "t" / "results.md").read_text()  # tiny: left out
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "t"), "--include-tiny"])
    assert result.exit_code == 0 and "| ddpm (tiny, n=8) |" in (tmp_path / "t" / "results.md").read_text()
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_empty_selection_still_renders(tmp_path: Path, registry) -> None:
    (tmp_path / "runs").mkdir()
    out = write_report(tmp_path, registry=registry)
    assert "No finished runs match the filters." in out.read_text()
    assert (tmp_path / "results.md").read_text().strip() == "No finished runs."
