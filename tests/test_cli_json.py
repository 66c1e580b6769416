"""`--json` of `genbench list`, `run` and `fid`: valid JSON with exactly the documented keys (genbench.jsonout);
`-` is standard output and then carries nothing else."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from genbench.cli import main
from genbench.jsonout import (CELL_KEYS, DATASET_KEYS, ENTRY_KEYS, FID_ROW_KEYS, LIST_KEYS, MODEL_KEYS, ROW_KEYS,
                              RUN_KEYS, SCHEMA_LIST, SCHEMA_RUN)


def test_list_json_has_the_documented_keys(process_registry):
    res = CliRunner().invoke(main, ["list", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == set(LIST_KEYS) and doc["schema"] == SCHEMA_LIST
    for kind, keys in (("models", MODEL_KEYS), ("datasets", DATASET_KEYS), ("metrics", ENTRY_KEYS),
                       ("extractors", ENTRY_KEYS), ("loggers", ENTRY_KEYS)):
        assert doc[kind], kind
        for entry in doc[kind]:
            assert set(entry) == set(keys), (kind, entry["name"])
    by_name = {m["name"]: m for m in doc["models"]}
    assert set(by_name) == set(process_registry.models.names())
    independent = by_name["independent"]
    assert independent["likelihood"] == "exact" and independent["role"] == "baseline" and "tiny" in independent["presets"]
    assert independent["config"]["max_steps"] == process_registry.models.get("independent").Config().max_steps
    digits = next(d for d in doc["datasets"] if d["name"] == "digits")
    assert digits["shape"] == [1, 8, 8] and digits["levels"] == 17 and sum(digits["splits"].values()) == 1797
    assert {t["name"] for t in doc["loggers"]} >= {"tensorboard", "mlflow"}
    assert all(set(p) == {"distribution", "version", "module"} for p in doc["plugins"])


def test_run_json_to_stdout_has_the_cells_and_rows(process_registry, tmp_path):
    res = CliRunner().invoke(main, ["run", "--models", "independent,diverging", "--preset", "tiny", "--out",
                                    str(tmp_path), "--extractors", "random-cnn", "--no-progress", "--no-report",
                                    "--json", "-"])
    assert res.exit_code == 1  # the diverging model fails on purpose; the document is still written
    doc = json.loads(res.stdout)  # nothing else on standard output: the summary and [ok] lines went to stderr
    assert set(doc) == set(RUN_KEYS) and doc["schema"] == SCHEMA_RUN and doc["out"] == str(tmp_path)
    assert doc["report"] is None
    assert [(c["model"], c["state"]) for c in doc["cells"]] == [("independent", "done"), ("diverging", "failed")]
    assert all(set(c) == set(CELL_KEYS) for c in doc["cells"])
    assert "diverged" in doc["cells"][1]["error"]
    assert doc["rows"] and all(set(r) == set(ROW_KEYS) for r in doc["rows"])
    stored = json.loads((tmp_path / "runs" / doc["cells"][0]["run_id"] / "rows.json").read_text())
    assert [r["metric"] for r in doc["rows"]] == [r["metric"] for r in stored]
    assert "Sample quality" in res.stderr and "1 of 2 cells finished" in res.stderr
    # to a file: the same document, the human output stays on stdout; the report of the folder is written
    again = CliRunner().invoke(main, ["run", "--models", "independent", "--preset", "tiny", "--out", str(tmp_path),
                                      "--extractors", "random-cnn", "--no-progress",
                                      "--json", str(tmp_path / "run.json")])
    assert again.exit_code == 0 and "[cached]" in again.stdout
    from_file = json.loads((tmp_path / "run.json").read_text())
    assert from_file["cells"][0]["state"] == "skipped" and from_file["rows"] == doc["rows"]
    assert from_file["report"] == str(tmp_path / "index.html") and (tmp_path / "results.md").is_file()
    assert f"report: {tmp_path / 'index.html'}" in again.stdout


def test_fid_json_dash_is_standard_output_not_a_file_named_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.integers(0, 17, size=(40, 8, 8), dtype=np.uint8), levels=17)
    np.savez(tmp_path / "b.npz", x=rng.integers(0, 17, size=(30, 8, 8), dtype=np.uint8), levels=17)
    res = CliRunner().invoke(main, ["fid", "a.npz", "b.npz", "--extractors", "random-cnn", "--dataset", "digits", "--kid",
                                    "--kid-subsets", "5", "--no-cache", "--json", "-"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert not (tmp_path / "-").exists()
    assert [r["metric"] for r in rows] == ["fid", "kid"] and all(set(r) == set(FID_ROW_KEYS) for r in rows)
    assert rows[0]["n"] == 30 and rows[0]["n_reference"] == 40 and "sha256" in res.stderr
    # --extractor still works, with a deprecation line
    old = CliRunner().invoke(main, ["fid", "a.npz", "b.npz", "--extractor", "random-cnn", "--dataset", "digits",
                                    "--no-cache"])
    assert old.exit_code == 0 and "--extractor is deprecated" in old.stderr
    assert f"{rows[0]['value']:.6g}" in old.stdout
