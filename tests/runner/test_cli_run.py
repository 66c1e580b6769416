"""`genbench run`: flags, or a grid file (--config) with flags on top; the grid is recorded in config.json."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genbench import plugins
from genbench.cli import main


@pytest.fixture
def process_registry(registry):
    """The CLI builds its registry with get_registry(); here it is the test registry (no entry points)."""
    previous = plugins._REGISTRY
    plugins.set_registry(registry)
    yield registry
    plugins.set_registry(previous)


def test_run_needs_models_or_a_grid(process_registry, tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "--models" in res.output and "--config" in res.output


def test_run_from_a_grid_file_with_flags_on_top(process_registry, tmp_path):
    pytest.importorskip("genbench.grid")
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'models = ["independent"]\ndatasets = ["digits"]\nseeds = [0]\npreset = "quick"\n'
        'extractors = ["random-cnn"]\n'
        f'out = "{tmp_path / "from-grid"}"\n'
        '[set]\nmax_steps = 4\nn_samples = 30\nsample_batch_size = 30\neval_every = 4\n'
    )
    out = tmp_path / "from-flag"
    res = CliRunner().invoke(main, ["run", "--config", str(grid), "--seeds", "1", "--set", "n_samples=20",
                                    "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list(out.glob("runs/independent-digits-s1-*"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["identity"]["seed"] == 1 and config["identity"]["config"]["n_samples"] == 20
    assert config["identity"]["config"]["max_steps"] == 4 and config["identity"]["extractors"] == ["random-cnn"]
    assert config["grid"]["seeds"] == [1] and config["grid"]["command_line_overrides"] == {"n_samples": "20"}
    assert config["grid"]["out"] == str(out) and config["grid"]["common_overrides"]["max_steps"] == 4
    assert not (tmp_path / "from-grid").exists()
