"""The latent diffusion's completion: the known latents fitted to the known pixels, the decoding choice, and what
the rows record (genbench_ldm.completion)."""
from __future__ import annotations

import pytest
import torch

import genbench_ldm.completion as completion
from genbench.data.files import resolve_dataset
from genbench.plugins import build_registry
from genbench.tasks.latent_fit import COMPLETION_NOISE
from genbench.tasks.masks import parse_mask
from genbench.tasks.options import apply_task_options
from genbench.testing import tiny_model


@pytest.fixture(scope="module")
def setup():
    registry = build_registry(autoload=True)
    data = resolve_dataset("digits", registry).load()
    # decode="sample": as the quick and standard presets on digits (at most 64 levels), whose samples are draws
    return tiny_model(registry.models.get("ldm"), data.spec, {"decode": "sample"}), data


def known_pixel_objective(model, u, x, known):
    image = model.lik.mean(model.networks["decoder"](u / (model.scale or 1.0)))
    sq = ((image - x) ** 2 * known.expand_as(x)).flatten(1).sum(1) / (2 * COMPLETION_NOISE**2)
    return sq + 0.5 * u.pow(2).flatten(1).sum(1)


def test_the_fit_lowers_the_known_pixels_objective_and_leaves_the_networks_alone(setup):
    model, data = setup
    x = data.unit("test")[:4]
    known = parse_mask("bottom-half").known_mask(4, 8, 8)
    u0 = completion._encode(model, torch.where(known.expand_as(x), x, torch.full_like(x, 0.5)))
    before = {k: v.clone() for k, v in model.networks["decoder"].state_dict().items()}
    u = completion.fitted_known_latents(model, x, known, u0, 30)
    assert u.shape == u0.shape and not u.requires_grad
    assert (known_pixel_objective(model, u, x, known) < known_pixel_objective(model, u0, x, known)).all()
    assert all(torch.equal(before[k], v) for k, v in model.networks["decoder"].state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in model.networks["decoder"].parameters())
    assert completion.fitted_known_latents(model, x, known, u0, 0) is u0  # 0 steps: the encoder's mean


def test_options_reach_the_method_the_nfe_and_the_rows(setup):
    model, data = setup
    x = data.unit("test")[:2]
    known = parse_mask("bottom-half").known_mask(2, 8, 8)
    r, j = completion.repaint_settings(model)
    # RePaint's defaults (pool=0) are the method measured before the options existed: the encoder's latents, the
    # model's decode
    assert completion.completion_settings(model) == (0, False)
    apply_task_options(model, {"pool": 0}, "complete")
    assert completion.completion_nfe(model) == completion.repaint_nfe(model.config.T, j, r) + 1
    apply_task_options(model, {"pool": 0, "resamplings": 1, "jump_length": 2, "latent_fit": 7, "decode_mean": 1},
                       "complete")
    try:
        assert completion.completion_nfe(model) == completion.repaint_nfe(model.config.T, 2, 1) + 7 + 1
        assert completion.details(model, "complete") == {
            "method": "RePaint (latent) + pixel consistency", "resamplings": 1, "jump_length": 2,
            "latent_fit_steps": 7, "decode": "decoder mean"}
        # the decoder mean is a function of the latents: two completions of one draw of the latents agree, and
        # a draw of p(x | z) (decode_mean=0) differs from the mean where the pixels are unknown
        mean = completion.complete(model, x, known, torch.Generator().manual_seed(3))
        assert torch.equal(mean, completion.complete(model, x, known, torch.Generator().manual_seed(3)))
        apply_task_options(model, {"pool": 0, "resamplings": 1, "jump_length": 2, "latent_fit": 7, "decode_mean": 0},
                           "complete")
        drawn = completion.complete(model, x, known, torch.Generator().manual_seed(3))
        k = known.expand_as(x)
        assert torch.equal(drawn[k], x[k]) and torch.equal(mean[k], x[k])
        assert not torch.equal(drawn[~k], mean[~k])
        assert completion.details(model, "complete")["decode"] == "as the samples (sample)"
        apply_task_options(model, {"pool": 0, "decode_mean": 2}, "complete")
        with pytest.raises(ValueError, match="decode_mean must be 0 or 1"):
            completion.completion_settings(model)
        assert "latent_fit_steps" not in completion.details(model, "denoise")
    finally:
        model.restoration_options = {}
    assert completion.repaint_settings(model) == (r, j)


def test_importance_resampling_keeps_the_weighted_pool_member_and_the_known_pixels(setup, monkeypatch):
    """pool = M > 0: M of the model's samples, each image keeps the member its weights pick (here forced: image i
    takes member 2 i), decoded as the model decodes; the known pixels are the data's; rows and NFE say so."""
    model, data = setup
    x = data.unit("test")[:3]
    known = parse_mask("bottom-half").known_mask(3, 8, 8)
    pool = torch.randn(6, *model.latent_shape)
    monkeypatch.setattr(model, "sample_latents", lambda n, steps, generator: (pool[:n], 0))
    seen = {}

    def weights(lik, params, levels, known_mask):
        assert params.shape[0] == 6 and torch.equal(levels, data.spec.to_levels(x)) and torch.equal(known_mask, known)
        logw = torch.full((3, 6), -1e9, dtype=torch.float64)
        logw[torch.arange(3), 2 * torch.arange(3)] = 0.0
        return logw

    real_decode = model.decode

    def decode(u, generator):
        seen["u"] = u
        return real_decode(u, generator)

    monkeypatch.setattr(completion, "pool_log_weights", weights)
    monkeypatch.setattr(model, "decode", decode)
    apply_task_options(model, {"pool": 6, "pool_steps": 5}, "complete")
    try:
        out = completion.complete(model, x, known, torch.Generator().manual_seed(0))
        assert torch.equal(seen["u"], pool[[0, 2, 4]])
        k = known.expand_as(x)
        assert torch.equal(out[k], x[k]) and out.min() >= 0 and out.max() <= 1
        assert completion.completion_nfe(model) == 6 * model.nfe(5) + 1
        got = completion.details(model, "complete")
        assert got["pool"] == 6 and got["pool_sampler"] == model.sampler_name(5)
        assert "resamplings" not in got
    finally:
        model.restoration_options = {}
    assert completion.pool_settings(model) == (completion.POOL, completion.POOL_STEPS)


def test_importance_resampling_runs_on_the_real_pool(setup):
    """The unpatched path: the model's sampler, the real weights, the known pixels kept, the same draw from the
    same generator seed."""
    model, data = setup
    x = data.unit("test")[:2]
    known = parse_mask("center").known_mask(2, 8, 8)
    apply_task_options(model, {"pool": 4, "pool_steps": 3}, "complete")
    model.restoration_diagnostics = {}
    try:
        a = completion.complete(model, x, known, torch.Generator().manual_seed(1))
        ess = model.restoration_diagnostics["effective_sample_size"]
        assert len(ess) == 2 and all(1.0 - 1e-9 <= v <= 4.0 + 1e-9 for v in ess)
        b = completion.complete(model, x, known, torch.Generator().manual_seed(1))
    finally:
        model.restoration_options = {}
    k = known.expand_as(x)
    assert torch.equal(a, b) and torch.equal(a[k], x[k])
