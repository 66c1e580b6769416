"""`genbench report [RUN_DIRS...] --out DIR`: reads the runs given (default reports/), writes where --out says."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.results import COLUMNS

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "leaderboard_standard_digits.csv"


def _store(folder: Path, run_ids: list[str]) -> None:
    """Run folders made of committed rows (what the runner writes: status.json, config.json, rows.json)."""
    frame = pd.read_csv(RESULTS, keep_default_na=False, na_values={"value": [""], "stderr": [""], "n": [""]})
    for run_id in run_ids:
        rows = [{c: (None if isinstance(r.get(c), float) and r[c] != r[c] and c != "value" else r.get(c))
                 for c in COLUMNS} for r in frame[frame["run_id"] == run_id].to_dict("records")]
        run = folder / "runs" / run_id
        run.mkdir(parents=True)
        first = rows[0]
        (run / "status.json").write_text(json.dumps({
            "run_id": run_id, "model": first["model"], "dataset": first["dataset"], "seed": first["seed"],
            "preset": first["preset"], "config_hash": first["config_hash"], "state": "done"}))
        (run / "config.json").write_text(json.dumps({"config_hash": first["config_hash"]}))
        (run / "rows.json").write_text(json.dumps(rows))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    frame = pd.read_csv(RESULTS, usecols=["run_id", "model"])
    ids = {m: sorted(g["run_id"].unique()) for m, g in frame.groupby("model")}
    root = tmp_path_factory.mktemp("stores")
    _store(root / "a", ids["vae"][:2])
    _store(root / "b", [ids["vae"][2], ids["gan"][0]])
    return root, ids


def _report_ids(folder: Path) -> set[str]:
    return {r["run_id"] for r in json.loads((folder / "results.json").read_text())["rows"] if r.get("run_id")}


def test_report_reads_the_folders_given_and_writes_where_out_says(stores):
    root, ids = stores
    res = CliRunner().invoke(main, ["report", str(root / "a"), str(root / "b"), "--out", str(root / "both")])
    assert res.exit_code == 0, res.output
    assert _report_ids(root / "both") == set(ids["vae"]) | {ids["gan"][0]}
    assert not (root / "a" / "index.html").exists() and not (root / "b" / "results.md").exists()
    assert (root / "both" / "index.html").read_text().count("<html") == 1
    # one folder: read in place, written beside its runs unless --out says otherwise
    res = CliRunner().invoke(main, ["report", str(root / "a")])
    assert res.exit_code == 0 and _report_ids(root / "a") == set(ids["vae"][:2])
    res = CliRunner().invoke(main, ["report", str(root / "b" / "runs"), "--out", str(root / "only-b")])
    assert res.exit_code == 0 and _report_ids(root / "only-b") == {ids["vae"][2], ids["gan"][0]}
    one = root / "b" / "runs" / ids["gan"][0]
    res = CliRunner().invoke(main, ["report", str(one), "--out", str(root / "one"), "--models", "gan"])
    assert res.exit_code == 0 and _report_ids(root / "one") == {ids["gan"][0]}


def test_default_source_is_reports_and_the_old_spelling_gets_a_hint(stores, tmp_path, monkeypatch):
    root, ids = stores
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["report", "--out", str(root / "a")])
    assert res.exit_code != 0 and f"did you mean `genbench report {root / 'a'}`" in res.output
    assert len(res.output.strip().splitlines()) == 1
    (tmp_path / "reports").symlink_to(root / "a", target_is_directory=True)
    res = CliRunner().invoke(main, ["report", "--out", "elsewhere", "--datasets", "digits"])
    assert res.exit_code == 0, res.output
    assert _report_ids(tmp_path / "elsewhere") == set(ids["vae"][:2])
    res = CliRunner().invoke(main, ["report", "--to", "moved"])
    assert res.exit_code == 0 and "--to is deprecated" in res.output and (tmp_path / "moved" / "index.html").exists()


@pytest.mark.parametrize("args, message", [
    (["a", "b"], "give --out DIR: where to write the report of several folders"),
    (["a", "a", "--out", "x"], "a folder is given twice"),
    (["nowhere", "--out", "x"], "nowhere does not exist; give what `genbench run --out` wrote"),
])
def test_bad_sources_are_one_line_errors(stores, monkeypatch, args, message):
    root, _ = stores
    monkeypatch.chdir(root)
    res = CliRunner().invoke(main, ["report", *args])
    assert res.exit_code != 0 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (root / "x").exists()


def test_a_run_in_two_folders_is_read_once(stores, tmp_path, caplog):
    root, ids = stores
    twin = tmp_path / "twin"
    _store(twin, [ids["vae"][0]])
    res = CliRunner().invoke(main, ["report", str(root / "a"), str(twin), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "is in" in caplog.text and _report_ids(tmp_path / "out") == set(ids["vae"][:2])
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert sum(1 for r in rows if r.get("run_id") == ids["vae"][0] and r["metric"] == "fid") == 1
