"""Random state: a resumed run equals an uninterrupted one; sample scoring during training leaves training alone."""
from __future__ import annotations

import random
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import genbench_independent
from genbench import GenerativeModel, ModelConfig, hookimpl
from genbench.io import load_checkpoint
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.runner.device import capture_rng, restore_rng


@dataclass
class NoisyConfig(ModelConfig):
    max_steps: int | None = 12
    n_samples: int = 24
    sample_batch_size: int = 24
    eval_every: int = 1000


class Noisy(GenerativeModel):
    """Each step moves its weights by noise from torch's, numpy's and python's global generators."""

    name = "noisy"
    Config = NoisyConfig
    presets = {"tiny": {}}
    interrupt_at: int | None = None

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)
        self.net = nn.Linear(4, 4)  # initialised from torch's global generator
        self.networks = {"net": self.net}

    def train_step(self, x):
        if self.step == Noisy.interrupt_at:
            raise KeyboardInterrupt
        assert self.net.training, "the runner must hand the model back in train mode"
        noise = float(torch.randn(())) + float(np.random.standard_normal()) + random.random()
        with torch.no_grad():
            self.net.weight.add_(1e-2 * noise)
        return {"loss": noise}

    def sample(self, n, *, steps=None, generator=None):
        base = torch.rand(n, *self.data.shape, generator=generator)
        return (base + self.net.weight.sum()).frac()


plugin = types.ModuleType("genbench_test_noisy")


@hookimpl
def _models() -> list[type]:
    return [Noisy]


plugin.genbench_models = _models  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def noisy_registry():
    return build_registry(extra=[genbench_independent, plugin], autoload=False)


def _runner(path, registry, cache_dir, **options):
    return Runner(path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir, extractors=["random-cnn"],
                  **options)


def _final(result):
    weights = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")["model"]["networks"]["net"]["weight"]
    samples = np.load(result.run_dir / "samples" / "default.npz")["samples"]
    return weights, samples


def test_capture_and_restore_cover_every_generator():
    state = capture_rng()
    first = (torch.rand(3), np.random.standard_normal(3), random.random())
    restore_rng(state)
    again = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all() and first[2] == again[2]


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, noisy_registry, cache_dir, monkeypatch):
    spec = CellSpec("noisy", "digits", 3, "tiny", {})
    whole = _runner(tmp_path / "whole", noisy_registry, cache_dir).run_cell(spec)
    assert whole.state == "done", whole.error

    monkeypatch.setattr(Noisy, "interrupt_at", 7)
    runner = _runner(tmp_path / "split", noisy_registry, cache_dir, checkpoint_every_steps=1)  # one after every step
    with pytest.raises(KeyboardInterrupt):
        runner.run_cell(spec)
    assert load_checkpoint(runner.out_dir / "runs" / runner.plan(spec).run_id / "checkpoints" / "last.pt")["model"]["step"] == 7
    torch.manual_seed(999)  # whatever the process did in between must not matter
    np.random.seed(999)
    random.seed(999)
    monkeypatch.setattr(Noisy, "interrupt_at", None)
    resumed = runner.run_cell(spec)
    assert resumed.state == "done", resumed.error
    assert "at step 7" in (resumed.run_dir / "log.txt").read_text()
    w_whole, s_whole = _final(whole)
    w_resumed, s_resumed = _final(resumed)
    assert torch.equal(w_whole, w_resumed) and np.array_equal(s_whole, s_resumed)


def test_sample_scores_during_training_leave_training_unchanged(tmp_path, noisy_registry, cache_dir):
    import pandas as pd

    plain = _runner(tmp_path / "plain", noisy_registry, cache_dir).run_cell(CellSpec("noisy", "digits", 1, "tiny", {}))
    scored = _runner(tmp_path / "scored", noisy_registry, cache_dir).run_cell(
        CellSpec("noisy", "digits", 1, "tiny", {"sample_every": 4}))
    assert plain.state == scored.state == "done", scored.error
    w_plain, s_plain = _final(plain)
    w_scored, s_scored = _final(scored)
    assert torch.equal(w_plain, w_scored) and np.array_equal(s_plain, s_scored)
    curves = pd.read_csv(scored.run_dir / "curves.csv")
    scores = curves.dropna(subset=["fid:default"])
    assert list(scores["step"]) == [4, 8, 12]
    for metric in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert scores[f"{metric}:default"].notna().all(), metric
    # the last score is the final draw's: same generator, same weights, same extractor
    final_fid = next(r["value"] for r in scored.rows if r["metric"] == "fid" and r["sampler"] == "default")
    assert scores["fid:default"].iloc[-1] == pytest.approx(final_fid, rel=1e-12)
