"""Latent diffusion through the genbench interface: the budget split between the stages, the frozen autoencoder
and the scale factor, NFE, checkpoints and presets (the shared contract runs in tests/test_contract.py)."""
from __future__ import annotations

import io

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, DIGITS_SPEC, contract_batch
from genbench_ldm import LatentDiffusion


def make(spec: DataSpec = DIGITS_SPEC, **overrides) -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(resolve_config(LatentDiffusion, "tiny", spec, overrides), spec)


def step(model: LatentDiffusion, x: torch.Tensor) -> dict[str, float]:
    out = model.train_step(x)
    model.step += 1
    return out


def test_the_budget_splits_between_the_stages_and_stage_two_freezes_the_autoencoder():
    model = make(max_steps=10, ae_fraction=0.3)
    x = contract_batch(DIGITS_SPEC, n=16)
    model.train(True)
    stages = []
    for i in range(10):
        if i == 3:
            ae_before = {k: v.clone() for k, v in model.networks["encoder"].state_dict().items()}
            dec_before = {k: v.clone() for k, v in model.networks["decoder"].state_dict().items()}
            unet_before = {k: v.clone() for k, v in model.networks["unet"].state_dict().items()}
            assert model.scale is None
        stages.append(step(model, x)["stage"])
    assert stages == [1.0] * 3 + [2.0] * 7
    assert model.ae_steps == 3 and model.stage == 2
    for k, v in model.networks["encoder"].state_dict().items():
        assert torch.equal(v, ae_before[k]), k
    for k, v in model.networks["decoder"].state_dict().items():
        assert torch.equal(v, dec_before[k]), k
    assert any(not torch.equal(v, unet_before[k]) for k, v in model.networks["unet"].state_dict().items())
    assert not model.networks["encoder"].training and model.networks["unet"].training
    # the scale factor makes the latents of a batch unit-variance (estimated once, on the first stage-2 batch)
    torch.manual_seed(1)
    u = model.scale * model.latents(x)
    assert 0.7 < float(u.std()) < 1.4, float(u.std())


def test_time_budget_split():
    model = make(max_steps=None, max_minutes=1.0, ae_fraction=0.5)
    model.ae_seconds = 29.0
    assert not model.stage1_done()
    model.ae_seconds = 30.0
    assert model.stage1_done()
    assert step(model, contract_batch(DIGITS_SPEC))["stage"] == 2.0


def test_nfe_counts_the_decoder_pass_and_sampler_names():
    model = make(T=20)
    model.train(False)
    calls = {"unet": 0, "decoder": 0}
    model.averaged["ema"].register_forward_hook(lambda *a: calls.__setitem__("unet", calls["unet"] + 1))
    model.networks["decoder"].register_forward_hook(lambda *a: calls.__setitem__("decoder", calls["decoder"] + 1))
    for steps, diffusion in ((None, 20), (5, 5)):
        calls.update(unet=0, decoder=0)
        with torch.inference_mode():
            model.sample(2, steps=steps, generator=torch.Generator().manual_seed(0))
        assert calls == {"unet": diffusion, "decoder": 1} and model.nfe(steps) == diffusion + 1
    assert model.sampler_name(None) == "ancestral-20" and model.sampler_name(5) == "DDIM-5"


def test_decode_sample_mode_draws_levels():
    model = make(decode="sample")
    model.train(False)
    with torch.inference_mode():
        x = model.sample(4, steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, DIGITS_SPEC.to_unit(DIGITS_SPEC.to_levels(x)))
    with pytest.raises(ValueError, match="decode"):
        make(decode="mode")


def test_checkpoint_keeps_scale_stage_and_split():
    model = make(max_steps=6, ae_fraction=0.5)
    x = contract_batch(DIGITS_SPEC, n=16)
    model.train(True)
    for _ in range(5):
        step(model, x)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make(max_steps=6, ae_fraction=0.5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert (fresh.scale, fresh.stage, fresh.ae_steps, fresh.step) == (model.scale, 2, 3, 5)
    assert fresh.latent_bound == model.latent_bound is not None
    with torch.no_grad():
        model.train(False)
        fresh.train(False)
        torch.testing.assert_close(fresh.nll(x), model.nll(x))


def test_presets_follow_the_data_size():
    def attn(model):
        return model.networks["unet"].cfg.attn_resolutions

    small = resolve_config(LatentDiffusion, "quick", DIGITS_SPEC)
    assert (small.f, small.z_channels) == (2, 2)
    assert attn(LatentDiffusion(small, DIGITS_SPEC)) == (2,)  # 4x4 latents, one down-sampling
    spec28 = CONTRACT_SPECS["28x28x1-K256"]
    big = resolve_config(LatentDiffusion, "quick", spec28)
    assert (big.f, big.z_channels) == (4, 4)
    assert LatentDiffusion(big, spec28).latent_shape == (4, 7, 7) and attn(LatentDiffusion(big, spec28)) == (4,)
    spec32 = CONTRACT_SPECS["32x32x3-K256"]
    f8 = LatentDiffusion(resolve_config(LatentDiffusion, "quick", spec32, {"f": 8}), spec32)
    assert f8.latent_shape == (4, 4, 4) and attn(f8) == (2,)
    assert LatentDiffusion(resolve_config(LatentDiffusion, "tiny", CONTRACT_SPECS["28x28x1-K256"]),
                           CONTRACT_SPECS["28x28x1-K256"]).lik.name == "logistic"


@pytest.mark.parametrize("steps", [None, 5], ids=["ancestral", "DDIM-5"])
def test_sampling_clamps_predicted_latents_to_the_first_batch_range(steps):
    """latent_bound = max |s z| of the batch that set s; with a wildly wrong eps network the sampled u_0 stays
    within it (clip_latents on) and leaves it when off -- the DDIM blow-up at abar_t ~ 0 that the clamp stops."""
    model = make(max_steps=4, ae_fraction=0.5, T=50)
    x = contract_batch(DIGITS_SPEC, n=16)
    model.train(True)
    for _ in range(3):
        step(model, x)
    model.train(False)
    assert model.stage == 2 and model.scale is not None
    assert 0 < model.latent_bound < 20
    model.eps_fn = lambda u, t: torch.full_like(u, 50.0)  # noqa: E731  a broken noise prediction
    with torch.inference_mode():
        clamped, _ = model.sample_latents(8, steps, torch.Generator().manual_seed(0))
        model.config.clip_latents = False
        free, _ = model.sample_latents(8, steps, torch.Generator().manual_seed(0))
    if steps is not None:  # DDIM's last step returns the clamped u_0 itself
        assert clamped.abs().max() <= model.latent_bound + 1e-5
    else:  # ancestral adds sigma_1 z after the clamped posterior mean
        assert clamped.abs().max() < 3 * model.latent_bound + 1
    assert free.abs().max() > 10 * model.latent_bound


@pytest.mark.parametrize("preset", ["quick", "standard"])
def test_few_level_presets_train_the_autoencoder_on_the_elbo_and_sample_decoder_draws(preset):
    """K <= 64: kl_weight 1 and decoder draws (the bound's model is the sampled one); K = 256 keeps Rombach et al.'s
    small KL weight and the decoder mean; an explicit override wins either way."""

    few = resolve_config(LatentDiffusion, preset, DataSpec(1, 8, 8, 17))
    assert (few.kl_weight, few.decode) == (1.0, "sample")
    many = resolve_config(LatentDiffusion, preset, DataSpec(1, 28, 28, 256))
    assert (many.kl_weight, many.decode) == (1e-2, "mean")
    own = resolve_config(LatentDiffusion, preset, DataSpec(1, 8, 8, 17), {"kl_weight": 0.01, "decode": "mean"})
    assert (own.kl_weight, own.decode) == (0.01, "mean")


def test_stage_one_is_validated_on_its_own_loss_and_stage_two_starts_from_the_best_autoencoder():
    model = make(max_steps=40, ae_fraction=0.5, ae_patience=2, kl_weight=1.0)
    x = contract_batch(DIGITS_SPEC, n=16)
    assert model.preliminary_stage() == "autoencoder"
    # the criterion is the stage's loss per image (here the negative ELBO under N(0, I)), recomputed by hand
    model.train(False)
    crit = model.stage_criterion(x)
    from genbench.nn.seeding import content_generator
    gen = content_generator(x)
    with torch.no_grad():
        mean, logvar = model.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen)
        rec = -model.lik.log_prob(model.networks["decoder"](z), DIGITS_SPEC.to_levels(x)).flatten(1).sum(1)
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1)
    torch.testing.assert_close(crit, rec + kl)
    model.train(True)
    step(model, x)
    model.observe_stage_validation(3.0, 0.1)  # best so far: these weights are kept
    kept = {k: v.clone() for k, v in model.networks["decoder"].state_dict().items()}
    step(model, x)
    model.observe_stage_validation(3.5, 0.1)
    assert not model.stage1_done()
    # a checkpoint in the middle of stage 1 keeps the kept weights and the count since the best
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make(max_steps=40, ae_fraction=0.5, ae_patience=2, kl_weight=1.0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert (fresh.ae_best_bpd, fresh.ae_best_step, fresh.ae_since_best) == (3.0, 1, 1)
    for k, v in fresh.ae_best_weights["decoder"].items():
        assert torch.equal(v, kept[k]), k
    step(fresh, x)
    fresh.observe_stage_validation(3.2, 0.1)  # the second validation without improvement: stage 1 stops early
    assert fresh.stage1_done() and fresh.ae_steps == 3
    assert any(not torch.equal(v, kept[k]) for k, v in fresh.networks["decoder"].state_dict().items())
    assert step(fresh, x)["stage"] == 2.0
    assert fresh.ae_started_from == 1 and fresh.ae_best_weights is None
    for k, v in fresh.networks["decoder"].state_dict().items():
        assert torch.equal(v, kept[k]), k
    assert fresh.preliminary_stage() is None
    fresh.observe_stage_validation(0.1, 0.1)  # stage 2: ignored
    assert fresh.ae_best_bpd == 3.0
    est = fresh.nll_estimates(x)[0]
    assert est.params["autoencoder_weights_from_step"] == 1 and est.params["autoencoder_stopped_early"] is True


def test_without_selection_stage_two_keeps_the_last_autoencoder():
    model = make(max_steps=4, ae_fraction=0.5, ae_select=False)
    x = contract_batch(DIGITS_SPEC, n=16)
    model.train(True)
    step(model, x)
    model.observe_stage_validation(3.0, 0.1)
    step(model, x)
    last = {k: v.clone() for k, v in model.networks["encoder"].state_dict().items()}
    step(model, x)
    assert model.stage == 2 and model.ae_started_from == 2
    for k, v in model.networks["encoder"].state_dict().items():
        assert torch.equal(v, last[k]), k


def test_ae_patience_must_be_positive():
    from genbench.config import ConfigError
    with pytest.raises(ConfigError, match="ae_patience"):
        make(ae_patience=0)
