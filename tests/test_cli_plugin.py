"""A third-party plugin without ceremony: examples/minimal_plugin (the README's) is pip-installed into a temporary
folder, found through its entry point, passes the shared contract and runs with `genbench run --models mine`."""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench import plugins
from genbench.cli import main
from genbench.model import NO_PRESETS_NOTE
from genbench.plugins import build_registry

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minimal_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install --no-deps --no-build-isolation --target DIR` of the example, DIR put on sys.path."""
    tmp = tmp_path_factory.mktemp("plugin")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(src)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("genbench_mine", None)
    importlib.invalidate_caches()


@pytest.fixture
def registry_with_mine(installed):
    with plugins.using_registry(build_registry(autoload=True)) as registry:
        yield registry


def test_the_entry_point_is_found_and_the_model_passes_the_contract(registry_with_mine):
    from genbench.testing import check_model_contract

    (ep,) = [e for e in importlib.metadata.entry_points(group="genbench") if e.name == "mine"]
    assert ep.dist.name == "genbench-mine" and ep.value == "genbench_mine"
    entry = registry_with_mine.models.entries["mine"]
    assert entry.plugin.distribution == "genbench-mine" and entry.plugin.version == "0.1.0"
    mine = entry.cls
    assert mine.presets == {} and mine.likelihood is None and mine.description
    check_model_contract(mine)  # under the "tiny" preset it does not define: its Config defaults


def test_genbench_run_models_mine(registry_with_mine, tmp_path):
    res = CliRunner().invoke(main, ["run", "--models", "mine", "--steps", "2", "--out", str(tmp_path),
                                    "--extractors", "random-cnn", "--n-samples", "100", "--no-progress",
                                    "--no-report"])
    assert res.exit_code == 0, res.output
    assert "model 'mine' defines no presets: it runs on its Config defaults" in res.stderr
    assert "[ok] mine on digits seed 0" in res.stdout and "Sample quality" in res.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset_note"] == NO_PRESETS_NOTE and config["identity"]["preset"] == "quick"
    assert config["identity"]["config"]["batch_size"] == 64 and config["identity"]["config"]["max_steps"] == 2
    rows = json.loads((run_dir / "rows.json").read_text())
    by_metric = {r["metric"]: r for r in rows}
    assert {"fid", "kid", "precision", "train_steps", "parameters"} <= set(by_metric)
    assert by_metric["train_steps"]["value"] == 2 and by_metric["parameters"]["value"] == 0
    assert json.loads(by_metric["fid"]["versions"])["plugin"] == "genbench-mine 0.1.0"
    assert (run_dir / "samples" / "default.png").is_file()
