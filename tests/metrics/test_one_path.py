"""One path for each thing: the run's registry reaches every extractor lookup, PRDC is one function for the
runner and `genbench fid`, and fitting an extractor leaves the caller's random state alone."""
from __future__ import annotations

import random
import types

import numpy as np
import pytest
import torch
from torch import nn

import genbench_independent
from genbench import hookimpl
from genbench.metrics.base import EvalContext, SampleSet
from genbench.metrics.extractors import (
    ClassifierExtractor, ClassifierNet, FeatureExtractor, RandomCNNExtractor, get_extractor, seeded_init,
    train_classifier, weights_sha256,
)
from genbench.metrics.kid import PRDCMetric
from genbench.metrics.stats import prdc, prdc_of_sets
from genbench.plugins import UnknownNameError, build_registry
from genbench.runner import CellSpec, Runner


class MeanPool(FeatureExtractor):
    """A plugin's extractor: a fixed linear map of 2x2-mean-pooled images."""

    name = "meanpool"
    description = "test extractor registered through build_registry(extra=...)"
    batch_size = 256

    @classmethod
    def load(cls, data, cache_dir, device, **options):
        c, h, w = data.spec.shape
        net = seeded_init(lambda: nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(c * (h // 2) * (w // 2), 6)), 7)
        return cls(net.to(device).eval(), weights_sha256(net), 6, "none (2x2 mean pool)")


extractor_plugin = types.ModuleType("genbench_test_meanpool")


@hookimpl
def _extractors() -> list[type]:
    return [MeanPool]


extractor_plugin.genbench_extractors = _extractors  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def digits(registry):
    return registry.datasets.get("digits")().load()


@pytest.fixture(scope="module")
def with_meanpool():
    return build_registry(extra=[genbench_independent, extractor_plugin], autoload=False)


def test_an_extra_extractor_reaches_ctx_extractor(with_meanpool, registry, digits, tmp_path):
    ctx = EvalContext(model=None, data=digits, samples=[], device=torch.device("cpu"), cache_dir=tmp_path, seed=0,
                      registry=with_meanpool, extractor_names=["meanpool"])
    ext = ctx.extractor("meanpool")
    assert isinstance(ext, MeanPool) and ext.features(digits.unit("test")[:5]).shape == (5, 6)
    with pytest.raises(UnknownNameError, match="meanpool"):  # no process-wide fallback: only the given registry
        EvalContext(model=None, data=digits, samples=[], device=torch.device("cpu"), cache_dir=tmp_path, seed=0,
                    registry=registry).extractor("meanpool")


def test_an_extra_extractor_scores_a_whole_cell(with_meanpool, tmp_path):
    runner = Runner(tmp_path, registry=with_meanpool, device="cpu", progress=False, extractors=["meanpool"])
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick",
                                      {"max_steps": 5, "n_samples": 40, "sample_batch_size": 40, "eval_every": 5}))
    assert result.state == "done", result.error
    fid = [r for r in result.rows if r["metric"] == "fid"]
    assert fid and all(r["extractor"] == "meanpool" for r in fid)


def test_prdc_is_one_function_for_the_runner_and_genbench_fid(registry, digits, tmp_path):
    """The same images give the same precision/recall/density/coverage through the metric and the command."""
    from genbench.cli_fid import compare
    from genbench.data.files import load_image_set

    fake = torch.flip(digits.train[:180], dims=(3,))
    ctx = EvalContext(model=None, data=digits, samples=[SampleSet("s", None, fake, 1, 1.0, 50)],
                      device=torch.device("cpu"), cache_dir=tmp_path / "a", seed=4, registry=registry,
                      extractor_names=["random-cnn"])
    runner_rows = {r.metric: r.value for r in PRDCMetric().compute(ctx) if r.sampler == "s"}
    np.savez(tmp_path / "test.npz", x=digits.test.numpy(), levels=17)
    np.savez(tmp_path / "fake.npz", samples=fake.numpy(), levels=17)
    rows, _ = compare(load_image_set(str(tmp_path / "test.npz")), load_image_set(str(tmp_path / "fake.npz")), "random-cnn",
                      registry=registry, kid_=False, pr=True, cache_dir=tmp_path / "b", device=torch.device("cpu"),
                      dataset="digits", seed=4)
    fid_rows = {r.metric: r.value for r in rows}
    for metric in ("precision", "recall", "density", "coverage"):
        assert fid_rows[metric] == runner_rows[metric], metric


def test_prdc_of_sets_subsamples_the_reference_and_keeps_the_first_compared_points():
    g = torch.Generator().manual_seed(0)
    ref, cmp = torch.randn(50, 4, generator=g), torch.randn(30, 4, generator=g)
    got = prdc_of_sets(ref, cmp, seed=9)
    chosen = ref[torch.randperm(50, generator=torch.Generator().manual_seed(9))[:30]]
    assert got.n_each == 30 and got.result == prdc(chosen, cmp)
    assert prdc_of_sets(cmp, ref, seed=9).result == prdc(cmp, ref[:30])


def _rng_snapshot():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _same(a, b):
    return torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_extractor_fits_leave_the_global_random_state_alone(digits, tmp_path):
    torch.manual_seed(31)
    before = _rng_snapshot()
    net = train_classifier(digits, torch.device("cpu"), epochs=1)
    assert _same(before, _rng_snapshot())
    ext = RandomCNNExtractor.load(digits, tmp_path, torch.device("cpu"))
    assert _same(before, _rng_snapshot())
    # the network's weights are those the recipe always gave: torch.manual_seed(seed), then the network
    # (whitened on the training split: the whitening's buffers sit beside it)
    torch.manual_seed(0)
    reference = ClassifierNet(digits.spec.channels, 10, digits.spec.height)
    assert weights_sha256(ext.module.net) == weights_sha256(reference)
    assert isinstance(net, ClassifierNet) and ClassifierExtractor.name == "classifier"


def test_get_extractor_needs_the_registry(digits, tmp_path):
    with pytest.raises(TypeError):
        get_extractor("random-cnn", digits, tmp_path, torch.device("cpu"))  # type: ignore[call-arg]
