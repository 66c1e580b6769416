"""The registry: entry points as the one way in, did-you-mean, broken plugins, conflicts."""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import genbench_independent
from genbench import hookimpl
from genbench.plugins import (
    AUTOLOAD_ENV, PluginConflictError, PluginLoadWarning, UnknownNameError, build_registry, make_plugin_manager,
)

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_model_gets_did_you_mean_and_choices(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.models.get("independant")
    msg = str(info.value)
    assert "did you mean 'independent'?" in msg and "Available:" in msg and "\n" not in msg


def test_unknown_dataset_and_metric(registry):
    with pytest.raises(UnknownNameError, match="unknown data set 'digit'; did you mean 'digits'"):
        registry.datasets.get("digit")
    with pytest.raises(UnknownNameError, match="unknown metric 'fidd'; did you mean 'fid'"):
        registry.metrics.get("fidd")


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    clone = types.ModuleType("genbench_clone")

    @hookimpl
    def genbench_models():
        return [genbench_independent.IndependentCategorical]

    clone.genbench_models = genbench_models
    with pytest.raises(PluginConflictError, match="registered twice.*genbench_independent.*genbench_clone"):
        build_registry(extra=[genbench_independent, clone], autoload=False)


def test_builtin_families_come_through_the_entry_point_group():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="genbench")}
    assert eps.get("independent") == "genbench_independent"
    reg = build_registry(autoload=True)
    assert "independent" in reg.models
    assert reg.models.entries["independent"].plugin.distribution == "genbench"


def test_autoload_env_turns_entry_points_off(monkeypatch):
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    reg = build_registry()
    assert "independent" not in reg.models
    assert "digits" in reg.datasets  # the core's own data sets are always there


def test_core_modules_name_no_model():
    """The core never imports a model family by name: plugins come in through entry points only."""
    for path in (ROOT / "genbench").rglob("*.py"):
        text = path.read_text()
        for family in ("genbench_independent", "genbench_ddpm", "genbench_vae", "genbench_gan", "genbench_pixelcnn", "genbench_ldm"):
            assert family not in text, f"{path} names {family}"


def test_broken_plugin_warns_with_its_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "brokenplugin-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[genbench]\nbroken = genbench_broken_mod\n")
    (site / "genbench_broken_mod.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginLoadWarning, match="broken.*brokenplugin.*needs libfoo"):
        pm, infos = make_plugin_manager(autoload=True)
    assert any(i.distribution == "genbench" for i in infos.values())


THIRD_PARTY = '''
from dataclasses import dataclass
import torch
from genbench import GenerativeModel, ModelConfig, hookimpl


@dataclass
class MeanConfig(ModelConfig):
    max_steps: int | None = 3


class MeanImage(GenerativeModel):
    """Learns the mean image; samples it plus uniform noise of one level."""
    name = "meanimage"
    description = "third-party test model"
    Config = MeanConfig
    presets = {"tiny": {"n_samples": 20, "sample_batch_size": 10}, "quick": {}}

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)
        self.total = torch.zeros(data.shape)
        self.count = 0

    def train_step(self, x):
        self.total += x.sum(0).cpu()
        self.count += len(x)
        return {"loss": 0.0}

    def sample(self, n, *, steps=None, generator=None):
        mean = self.total / max(self.count, 1)
        noise = (torch.rand(n, *self.data.shape, generator=generator) - 0.5) / (self.data.levels - 1)
        return (mean + noise).clamp(0, 1)

    def extra_state(self):
        return {"total": self.total, "count": self.count}

    def load_extra_state(self, state):
        self.total, self.count = state["total"], int(state["count"])


@hookimpl
def genbench_models():
    return [MeanImage]
'''


def test_third_party_distribution_is_listed_and_runs(tmp_path):
    """Build and install a real, separate distribution with an entry point in group `genbench`."""
    pkg = tmp_path / "genbench-meanimage"
    (pkg / "genbench_meanimage").mkdir(parents=True)
    (pkg / "genbench_meanimage" / "__init__.py").write_text(THIRD_PARTY)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "genbench-meanimage"
        version = "1.2.3"
        dependencies = ["genbench"]
        [project.entry-points.genbench]
        meanimage = "genbench_meanimage"
        [tool.setuptools]
        packages = ["genbench_meanimage"]
    """))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(pkg)],
        check=True, capture_output=True, text=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop(AUTOLOAD_ENV, None)
    cli = [sys.executable, "-m", "genbench.cli"]
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "meanimage" in listed and "genbench-meanimage 1.2.3" in listed
    out = tmp_path / "reports"
    # random-cnn: the classifier would be fitted afresh in this folder (20 s); what is tested is the entry point
    ran = subprocess.run([*cli, "run", "--models", "meanimage", "--preset", "tiny", "--out", str(out), "--no-progress",
                          "--extractors", "random-cnn"], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    rows = list(out.glob("runs/meanimage-digits-s0-*/rows.csv"))
    assert rows, ran.stdout
    text = rows[0].read_text()
    assert "fid_floor" in text and "images_per_second" in text and "genbench-meanimage 1.2.3" in text


def test_hookimpl_lives_beside_the_hookspecs_and_core_plugins_do_not_import_the_manager():
    from genbench import hookimpl as exported
    from genbench import hookspecs, plugins

    assert exported is hookspecs.hookimpl is plugins.hookimpl
    code = "import sys, genbench.data.plugin, genbench.metrics.plugin; print('genbench.plugins' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_only_the_command_line_asks_for_the_process_wide_registry():
    """Everything below the CLI is handed the registry it should use: only the command modules (cli.py and
    its cli_<command>.py siblings) ask for it."""
    for path in (ROOT / "genbench").rglob("*.py"):
        if path.parent == ROOT / "genbench" and (path.name == "cli.py" or path.name.startswith("cli_")):
            continue
        if path.name == "plugins.py":
            continue
        assert "get_registry(" not in path.read_text(), f"{path} looks the registry up itself"


def test_using_registry_puts_the_previous_one_back_even_after_an_error(registry):
    from genbench import plugins

    before = plugins._REGISTRY
    with pytest.raises(RuntimeError):
        with plugins.using_registry(registry) as inside:
            assert inside is registry and plugins.get_registry() is registry
            raise RuntimeError("boom")
    assert plugins._REGISTRY is before
