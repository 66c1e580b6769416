"""The VAE's completion methods (genbench_vae.completion): the MAP latent fit by default, importance resampling over
prior draws with ``--task-set pool=M``."""
from __future__ import annotations

import pytest
import torch

import genbench_vae.completion as completion
from genbench.data.files import resolve_dataset
from genbench.plugins import build_registry
from genbench.tasks.masks import parse_mask
from genbench.tasks.options import apply_task_options
from genbench.testing import tiny_model


@pytest.fixture(scope="module")
def setup():
    registry = build_registry(autoload=True)
    data = resolve_dataset("digits", registry).load()
    return tiny_model(registry.models.get("vae"), data.spec, {"prior": "mixture"}), data


def test_the_default_is_the_map_fit_and_the_rows_say_so(setup):
    model, _ = setup
    assert completion.details(model, "complete") == {"method": "MAP latent fit (Adam)"}
    assert completion.completion_nfe(model) == completion.fit_nfe(1)


def test_importance_resampling_keeps_the_weighted_prior_draw(setup, monkeypatch):
    """pool = M: M prior draws; image i keeps the draw its weights pick (forced here: draw 3 - i), decoded as the
    samples are; the known pixels the data's; the rows and NFE say so."""
    model, data = setup
    x = data.unit("test")[:3]
    known = parse_mask("left-half").known_mask(3, 8, 8)
    pool = torch.randn(5, model.config.latent_dim)
    monkeypatch.setattr(model.prior, "sample", lambda n, generator: pool[:n])
    seen = {}
    real_decode = model.decode

    def weights(lik, params, levels, known_mask):
        assert torch.equal(levels, data.spec.to_levels(x)) and torch.equal(known_mask, known)
        logw = torch.full((3, len(params)), -1e9, dtype=torch.float64)
        start = seen.setdefault("offset", 0)
        for i in range(3):  # the draws come in decoder chunks: place each image's chosen draw where it falls
            if start <= 3 - i < start + len(params):
                logw[i, 3 - i - start] = 0.0
        seen["offset"] = start + len(params)
        return logw

    def decode(z, generator):
        seen["z"] = z
        return real_decode(z, generator)

    monkeypatch.setattr(completion, "pool_log_weights", weights)
    monkeypatch.setattr(model, "decode", decode)
    apply_task_options(model, {"pool": 5}, "complete")
    try:
        out = completion.complete(model, x, known, torch.Generator().manual_seed(0))
        assert torch.equal(seen["z"], pool[[3, 2, 1]])
        k = known.expand_as(x)
        assert torch.equal(out[k], x[k]) and out.min() >= 0 and out.max() <= 1
        assert completion.completion_nfe(model) == 6
        assert completion.details(model, "complete")["pool"] == 5
    finally:
        model.restoration_options = {}


def test_importance_resampling_runs_on_the_real_prior(setup):
    model, data = setup
    x = data.unit("test")[:2]
    known = parse_mask("center").known_mask(2, 8, 8)
    apply_task_options(model, {"pool": 64}, "complete")
    try:
        a = completion.complete(model, x, known, torch.Generator().manual_seed(1))
        b = completion.complete(model, x, known, torch.Generator().manual_seed(1))
    finally:
        model.restoration_options = {}
    k = known.expand_as(x)
    assert torch.equal(a, b) and torch.equal(a[k], x[k])
