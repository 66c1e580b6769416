"""Shared fixtures: an isolated registry with the reference model and test-only models."""
from __future__ import annotations

import logging
import types
from dataclasses import dataclass

import pytest
import torch

import genbench_independent
from genbench import DataSpec, GenerativeModel, ModelConfig, hookimpl
from genbench.plugins import build_registry
from genbench.testing import ReplayModel


@dataclass
class BrokenConfig(ModelConfig):
    fail_at: int = 3
    max_steps: int | None = 10


class Diverging(GenerativeModel):
    """Goes NaN at step ``fail_at`` (tests that a divergence is recorded, not silently scored)."""

    name = "diverging"
    Config = BrokenConfig
    presets = {"tiny": {"n_samples": 8, "sample_batch_size": 8}}

    def train_step(self, x):
        return {"loss": float("nan") if self.step + 1 >= self.config.fail_at else 1.0}

    def sample(self, n, *, steps=None, generator=None):
        return torch.rand(n, *self.data.shape, generator=generator)


class Raising(Diverging):
    """Raises inside sample()."""

    name = "raising"

    def train_step(self, x):
        return {"loss": 1.0}

    def sample(self, n, *, steps=None, generator=None):
        raise RuntimeError("sampler exploded on purpose")


class Replay(ReplayModel):
    """Memorises every training batch and samples by replaying them (the memorisation metric's positive case)."""



test_models = types.ModuleType("genbench_test_models")


@hookimpl
def _models() -> list[type]:
    return [Diverging, Raising, Replay]


test_models.genbench_models = _models  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run thousands of tiny ops: one intra-op thread is faster than two, and far faster on a busy CPU.
    OMP_NUM_THREADS=1 too, so that `genbench run`'s --threads auto (genbench.runner.precision) keeps one."""
    import os

    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)


@pytest.fixture(autouse=True, scope="session")
def genbench_logs_info():
    """What `genbench run` sets up: the "genbench" logger passes INFO on to each run's log.txt."""
    logger = logging.getLogger("genbench")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def registry():
    """Core data sets and metrics, the reference model and the broken test models; no entry points."""
    return build_registry(extra=[genbench_independent, test_models], autoload=False)


@pytest.fixture
def process_registry(registry):
    """The CLI builds its registry with get_registry(); here it is the test registry (no entry points)."""
    from genbench import plugins

    with plugins.using_registry(registry):
        yield registry


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One feature-classifier cache for the whole session (trained once, a few seconds)."""
    return tmp_path_factory.mktemp("genbench-cache")


@pytest.fixture
def digits_spec() -> DataSpec:
    return DataSpec(1, 8, 8, 17)


def pytest_configure(config):
    """``slow``: tests that start real multi-process machinery (a Ray cluster); CI runs them, ``-m 'not slow'``
    skips them locally."""
    config.addinivalue_line("markers", "slow: starts real multi-process machinery (a Ray cluster); run in CI")
