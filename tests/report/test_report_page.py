"""The written files: self-contained, escaped HTML; tidy CSV; JSON; filters; the CLI."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from report_fakes import HOSTILE, MODELS, write_failed, write_run

from genbench.cli import main
from genbench.report import OUTPUTS, write_report
from genbench.results import load_runs


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_all_outputs_are_written(demo_report: Path) -> None:
    for name in OUTPUTS:
        assert (demo_report.parent / name).stat().st_size > 0, name


def test_page_is_self_contained(demo_report: Path) -> None:
    html = demo_report.read_text()
    found = tags(html)
    names = {t for t, _ in found}
    assert not names & {"script", "link", "iframe", "object", "embed", "base", "form", "video", "audio", "source"}
    for tag, attrs in found:
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)  # no event handler attribute survived escaping
            if key in ("src", "href", "srcset", "poster", "action", "data"):
                assert value and (value.startswith("data:image/png;base64,") or value.startswith("#")), (tag, key, value[:40])
    assert not re.search(r"https?://", html)
    assert "@import" not in html and "url(" not in html and "@font-face" not in html
    csp = [a for t, a in found if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_hostile_strings_are_escaped(demo_report: Path) -> None:
    html = demo_report.read_text()
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert sum(1 for t, _ in tags(html) if t == "img") == html.count('src="data:image/png;base64,')


def test_page_sections(demo_report: Path, demo_runs: Path) -> None:
    html = demo_report.read_text()
    for heading in ("Leaderboard — digits", "Quality against cost — digits", "Models — digits", "Failed cells", "Provenance"):
        assert heading in html
    # each model: a name cell in the quality table, a section with its samples and curves
    for model in MODELS:
        assert f"<h3>{model}" in html
    assert "DivergenceError: ddpm diverged at step 312" in html
    assert "real test images · digits" in html
    assert "genbench run --models ddpm --dataset digits --seeds 0,1,2 --preset quick --device cpu" in html
    assert "719a2ad74fd0344a58905126fd622cfa5a748e3080514e679c5bbf29d5282378" in html  # extractor weights hash
    assert html.count('class="name"') >= len(MODELS) + 2


def test_csv_and_json_hold_the_tidy_rows(demo_report: Path, demo_runs: Path) -> None:
    frame, statuses = load_runs(demo_runs / "runs")
    csv = pd.read_csv(demo_report.parent / "results.csv")
    assert len(csv) == len(frame) and list(csv.columns) == list(frame.columns)
    data = json.loads((demo_report.parent / "results.json").read_text())
    assert len(data["rows"]) == len(frame)
    assert {f["run_id"] for f in data["failed"]} == {s["run_id"] for s in statuses if s["state"] != "done"}
    best = [r for r in data["leaderboard"] if r["best"] and r["metric"] == "fid"]
    assert [(r["model"], r["sampler"]) for r in best] == [("ddpm", "ancestral-1000")]


def test_filters_select_runs_models_and_datasets(tmp_path: Path) -> None:
    for seed in (0, 1):
        for model in ("ddpm", "vae", "independent"):
            write_run(tmp_path, model, seed, MODELS[model][0], MODELS[model][1])
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 1.0}, dataset="other")
    write_failed(tmp_path, "gan", "RuntimeError: boom")
    out = write_report(tmp_path, tmp_path / "a", models=["vae", "indep*"])
    rows = pd.read_csv(out.parent / "results.csv")
    assert set(rows["model"]) == {"vae", "independent"} and set(rows["dataset"]) == {"digits", "other"}
    assert "RuntimeError: boom" not in out.read_text()
    out = write_report(tmp_path, tmp_path / "b", datasets=["other"])
    assert set(pd.read_csv(out.parent / "results.csv")["dataset"]) == {"other"}
    assert "Real test images are not shown" in out.read_text()  # "other" is not a data set genbench knows
    out = write_report(tmp_path, tmp_path / "c", runs=["ddpm-digits-s0-*", "gan-*"])
    rows = pd.read_csv(out.parent / "results.csv")
    assert set(zip(rows["model"], rows["seed"])) == {("ddpm", 0)}
    assert "RuntimeError: boom" in out.read_text()


def test_cli_report(tmp_path: Path) -> None:
    write_run(tmp_path, "vae", 0, MODELS["vae"][0], MODELS["vae"][1])
    write_run(tmp_path, "gan", 0, MODELS["gan"][0], MODELS["gan"][1])
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path), "--to", str(tmp_path / "r"), "--models", "gan"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<h3>gan" in html and "<h3>vae" not in html
    assert f"genbench report --out {tmp_path} --to {tmp_path / 'r'} --models gan" in html
    missing = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "no runs under" in missing.output


def test_empty_selection_still_renders(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    out = write_report(tmp_path)
    assert "No finished runs match the filters." in out.read_text()
    assert (tmp_path / "results.md").read_text().strip() == "No finished runs."


@pytest.mark.parametrize("state, error", [("failed", "x" * 1000 + "\nsecond line"), ("running", None)])
def test_failed_cells_show_one_line(tmp_path: Path, state: str, error: str | None) -> None:
    run = write_failed(tmp_path, "vae", error or "")
    status = json.loads((run / "status.json").read_text())
    status["state"] = state
    if error is None:
        status.pop("error")
    (run / "status.json").write_text(json.dumps(status))
    html = write_report(tmp_path).read_text()
    assert "second line" not in html
    assert ("x" * 400 in html and "x" * 401 not in html) if error else "still running or was interrupted" in html


def test_invalid_likelihood_is_flagged_on_the_page(tmp_path: Path) -> None:
    write_run(tmp_path, "cheat", 0, {"default": (5.0, 10.0, 1)}, {"exact": 1.0}, entropy=1.6, stderr=0.01)
    write_run(tmp_path, "vae", 0, {"default": (6.0, 10.0, 1)}, {"ELBO": 2.5}, entropy=1.6, stderr=0.01)
    html = write_report(tmp_path).read_text()
    assert "Invalid likelihoods." in html and "⚠ invalid" in html
    assert html.count("⚠ invalid") == 1  # the cheat's bits/dim cell only
    assert "data entropy (floor)" in html and "1.6" in html
    md = (tmp_path / "results.md").read_text()
    assert "Data entropy (no model may go below): 1.6000 bits/dim." in md
