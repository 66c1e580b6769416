"""`genbench run`: flags, or a grid file (--config) with flags on top; the resolved grid is recorded in every
run's config.json, and running that config.json again gives the same cells (the same run ids)."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.metrics.inception import WEIGHTS_ENV

FAST = ["--extractors", "random-cnn", "--no-progress", "--no-report"]


def test_run_needs_models_or_a_grid(process_registry, tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "--models" in res.output and "--config" in res.output


def test_run_from_a_grid_file_with_flags_on_top(process_registry, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'models = ["independent"]\ndatasets = ["digits"]\nseeds = [0]\npreset = "quick"\n'
        'extractors = ["random-cnn"]\n'
        f'out = "{tmp_path / "from-grid"}"\n'
        '[set]\nmax_steps = 4\nn_samples = 30\nsample_batch_size = 30\neval_every = 4\n'
        '[set.independent]\nn_samples = 25\n'
    )
    out = tmp_path / "from-flag"
    res = CliRunner().invoke(main, ["run", "--config", str(grid), "--seeds", "1", "--set", "n_samples=20",
                                    "--out", str(out), "--no-progress", "--no-report"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list(out.glob("runs/independent-digits-s1-*"))
    config = json.loads((run_dir / "config.json").read_text())
    # a flag replaces the file's value; an unprefixed --set replaces [set] and [set.<model>] alike
    assert config["identity"]["seed"] == 1 and config["identity"]["config"]["n_samples"] == 20
    assert config["identity"]["config"]["max_steps"] == 4 and config["identity"]["extractors"] == ["random-cnn"]
    g = config["grid"]
    assert g["seeds"] == [1] and g["out"] == str(out) and g["models"] == ["independent"]
    assert g["common_overrides"] == {"max_steps": 4, "n_samples": "20", "sample_batch_size": 30, "eval_every": 4}
    assert g["model_overrides"] == {"independent": {}} and g["path"] == str(grid) and len(g["sha256"]) == 64
    assert not (tmp_path / "from-grid").exists()


def test_a_runs_config_json_repeats_its_grid_with_the_same_run_ids(process_registry, tmp_path, monkeypatch):
    """The grid block of config.json (after the command line's overrides) is enough to run the same cells again."""
    monkeypatch.setenv(WEIGHTS_ENV, "unset")  # restored after the test: --inception-weights sets it for the extractor
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"not read: random-cnn needs no weights")
    first = tmp_path / "first"
    res = CliRunner().invoke(main, ["run", "--models", "independent", "--seeds", "0-1", "--preset", "tiny",
                                    "--set", "independent.alpha=0.5", "--steps", "3", "--out", str(first),
                                    "--inception-weights", str(weights), *FAST])
    assert res.exit_code == 0, res.output
    assert os.environ[WEIGHTS_ENV] == str(weights.resolve())  # `run` accepts --inception-weights as `fid` does
    ids = sorted(p.name for p in (first / "runs").iterdir())
    assert len(ids) == 2
    config = json.loads((first / "runs" / ids[0] / "config.json").read_text())
    assert config["grid"]["seeds"] == [0, 1] and config["grid"]["model_overrides"] == {"independent": {"alpha": "0.5"}}
    assert config["identity"]["config"]["alpha"] == 0.5 and config["identity"]["config"]["max_steps"] == 3
    again = tmp_path / "again"
    res = CliRunner().invoke(main, ["run", "--config", str(first / "runs" / ids[0] / "config.json"),
                                    "--out", str(again), "--no-progress", "--no-report"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (again / "runs").iterdir()) == ids
    assert "[ok]" in res.output  # trained again in the new folder, not read back from the first
    # a run folder's config.json from before runs recorded a grid: its identity alone repeats the cell
    del config["grid"]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(config))
    res = CliRunner().invoke(main, ["run", "--config", str(legacy), "--out", str(first), "--no-progress", "--no-report"])
    assert res.exit_code == 0 and "[cached]" in res.output, res.output


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,0"], "seed 0 twice"),
    (["--seeds", "0-2,2"], "seed 2 twice"),
    (["--seeds", "2-0"], "the range '2-0' is empty"),
    (["--seeds", "a"], "--seeds must be a list of integers"),
    (["--set", "nosuch=1"], "--set nosuch is a config field of none of the models independent"),
    (["--set", "independent.alpah=1"], "--set independent.KEY has no config field 'alpah' (did you mean 'alpha'?)"),
    (["--set", "indep.alpha=1"], "--set indep.KEY names no registered model (did you mean 'independent'?)"),
    (["--set", "a.b.c=1"], "--set takes KEY=VALUE or MODEL.KEY=VALUE"),
    (["--log", "tensorbord"], "did you mean 'tensorboard'?"),
    (["--datasets", "digits,digits"], "--datasets names something twice"),
    (["--threads", "0"], "--threads must be a positive number or auto, got '0'"),
    (["--set", "precision=half"], "precision must be fp32, bf16, fp16 or auto"),
])
def test_bad_flags_are_one_line_errors_before_any_work(process_registry, tmp_path, args, message):
    res = CliRunner().invoke(main, ["run", "--models", "independent", "--out", str(tmp_path / "out"), *args, *FAST])
    assert res.exit_code != 0 and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out" / "runs").exists()


def test_datasets_alias_seed_ranges_and_per_model_overrides_make_the_planned_cells(process_registry, tmp_path,
                                                                                monkeypatch):
    """--dataset is --datasets; seeds 0,2-3; an unprefixed key reaches only the models that have it."""
    from genbench.cli import grid_cells

    for flag in ("--datasets", "--dataset"):
        res = CliRunner().invoke(main, ["run", "--models", "independent", flag, "nope", "--out", str(tmp_path), *FAST])
        assert res.exit_code != 0 and "nope" in res.output
    cells, grid = grid_cells(process_registry, None, models="independent,diverging", datasets="digits",
                              seeds="0,2-3", preset="tiny", extractors=None, out=None,
                              sets={"fail_at": "5", "independent.alpha": "0.5", "max_steps": "2"})
    assert [(c.model, c.seed) for c in cells] == [(m, s) for m in ("independent", "diverging") for s in (0, 2, 3)]
    assert cells[0].overrides == {"max_steps": "2", "alpha": "0.5"}
    assert cells[3].overrides == {"max_steps": "2", "fail_at": "5"}
    assert grid.out == "reports" and grid.extractors  # recorded as resolved, not as "the default"
    assert all(c.grid == grid.resolved() for c in cells)


def test_inception_weights_must_exist(process_registry, tmp_path):
    res = CliRunner().invoke(main, ["run", "--models", "independent", "--inception-weights", str(tmp_path / "missing"),
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "does not exist" in res.output
