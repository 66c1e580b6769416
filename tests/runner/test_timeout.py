"""`--cell-timeout`: a plugin that hangs is stopped, recorded as failed with a line, and the grid goes on."""
from __future__ import annotations

import importlib
import json

import pytest
from click.testing import CliRunner

import genbench_independent
from genbench import plugins
from genbench.cli import main
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner

HANGS = '''
import time

import torch

from genbench import GenerativeModel, ModelConfig, hookimpl


class Hangs(GenerativeModel):
    """Never returns from its first training step."""

    name = "hangs"
    Config = ModelConfig
    presets = {"tiny": {"max_steps": 3, "n_samples": 8, "sample_batch_size": 8, "eval_every": 3}}

    def train_step(self, x):
        time.sleep(3600)

    def sample(self, n, *, steps=None, generator=None):
        return torch.rand(n, *self.data.shape, generator=generator)


@hookimpl
def genbench_models():
    return [Hangs]
'''


@pytest.fixture
def hangs_registry(tmp_path, monkeypatch):
    """A registry whose plugin modules a child process can import by name (the hanging one from tmp_path)."""
    (tmp_path / "genbench_test_hangs.py").write_text(HANGS)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry(extra=[genbench_independent, importlib.import_module("genbench_test_hangs")],
                              autoload=False)
    with plugins.using_registry(registry):
        yield registry


def test_a_hanging_cell_is_stopped_and_the_grid_goes_on(hangs_registry, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", "--models", "hangs,independent", "--preset", "tiny", "--extractors",
                                    "random-cnn", "--cell-timeout", "12", "--out", str(out), "--no-progress",
                                    "--no-report"])
    assert res.exit_code == 1, res.output
    failed = [line for line in res.output.splitlines() if line.startswith("[FAILED]")]
    assert failed == [line for line in failed if "hangs on digits seed 0" in line] and len(failed) == 1
    assert "stopped after 12 s (--cell-timeout)" in failed[0] and "Traceback" not in res.output
    assert any(line.startswith("[ok] independent on digits") for line in res.output.splitlines()), res.output
    (hang_dir,) = out.glob("runs/hangs-*")
    status = json.loads((hang_dir / "status.json").read_text())
    assert status["state"] == "failed" and "--cell-timeout" in status["error"]
    assert "stopped after 12 s" in (hang_dir / "log.txt").read_text()


def test_plugins_a_child_cannot_import_are_named(registry, tmp_path):
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cell_timeout=5)
    result = runner.run_cell(CellSpec("diverging", "digits", 0, "tiny", {}))
    assert result.state == "failed" and "genbench_test_models" in result.error and "--cell-timeout" in result.error


def test_a_cell_process_dies_with_the_process_that_asked_for_it():
    """The child's parent is the forkserver (which lives as long as any child), so the child watches its caller."""
    import os
    import signal
    import subprocess
    import sys
    import time

    child_code = ("import sys, time; from genbench.runner.isolated import _die_with; _die_with(int(sys.argv[1])); "
                  "print('watching', flush=True); time.sleep(60)")
    caller_code = ("import os, subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', sys.argv[1], "
                   "str(os.getpid())]); print(c.pid, flush=True); time.sleep(60)")
    caller = subprocess.Popen([sys.executable, "-c", caller_code, child_code], stdout=subprocess.PIPE, text=True)
    child = int(caller.stdout.readline())
    assert caller.stdout.readline().strip() == "watching"  # the child shares its caller's stdout
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as fh:
            if fh.read().split()[2] == "Z":  # dead, waiting to be reaped by init
                return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the child outlived the process that started it")
