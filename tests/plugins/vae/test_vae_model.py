"""The VAE as a genbench model: sampling, estimate labels, presets, warm-up (the shared contract runs in
tests/test_contract.py)."""
from __future__ import annotations

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, DIGITS_SPEC
from genbench.nn.discrete import Categorical, DiscretisedLogistic
from genbench_vae import VAE


def make(spec: DataSpec = DIGITS_SPEC, **over) -> VAE:
    torch.manual_seed(0)
    m = VAE(resolve_config(VAE, "tiny", spec, over), spec)
    m.train(False)
    return m


@pytest.mark.parametrize("spec_name", list(CONTRACT_SPECS))
def test_sample_uses_only_the_generator_and_one_decoder_pass(spec_name):
    spec = CONTRACT_SPECS[spec_name]
    model = make(spec)
    calls = []
    model.decoder.register_forward_hook(lambda *a: calls.append(1))
    state = torch.get_rng_state()
    with torch.inference_mode():
        a = model.sample(5, generator=torch.Generator().manual_seed(7))
        b = model.sample(5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), state), "sample() must not touch the global RNG"
    assert model.nfe(None) == 1 and len(calls) == 2
    assert not torch.equal(a, b)
    # values are exactly the data's levels
    torch.testing.assert_close(a, spec.to_unit(spec.to_levels(a)))


def test_mode_sampling_is_the_decoder_mode_of_z_and_draws_vary_around_it():
    model = make()
    with torch.inference_mode():
        draw = model.sample(64, generator=torch.Generator().manual_seed(3))
        model.config.sample_mode = "mode"
        mode = model.sample(64, generator=torch.Generator().manual_seed(3))
        z = torch.randn(64, model.config.latent_dim, generator=torch.Generator().manual_seed(3))
        ref = DIGITS_SPEC.to_unit(model.decoder(z).argmax(2))
    assert torch.equal(mode, ref)
    assert model.sampler_name(None) == "decoder-mode"
    assert not torch.equal(draw, mode)
    with pytest.raises(ValueError, match="sample_mode"):
        make(sample_mode="argmax")


def test_sample_is_decode_of_prior_draws_and_decode_takes_any_latents():
    """sample(n) = decode(prior draws) with the same generator stream (z first, then the decoder's uniforms);
    decode of posterior latents (the bench's prior-vs-decoder diagnosis) gives images at the data's levels."""
    model = make()
    with torch.inference_mode():
        sampled = model.sample(16, generator=torch.Generator().manual_seed(5))
        gen = torch.Generator().manual_seed(5)
        decoded = model.decode(model.prior.sample(16, gen), gen)
        x = DIGITS_SPEC.to_unit(torch.randint(0, 17, (4, 1, 8, 8), generator=torch.Generator().manual_seed(1)))
        mu, _ = model.encoder(x)
        posterior = model.decode(mu, torch.Generator().manual_seed(0))
    assert torch.equal(sampled, decoded)
    assert posterior.shape == (4, 1, 8, 8)
    torch.testing.assert_close(posterior, DIGITS_SPEC.to_unit(DIGITS_SPEC.to_levels(posterior)))


def test_nll_is_deterministic_and_leaves_the_training_rng_alone():
    model = make()
    x = DIGITS_SPEC.to_unit(torch.randint(0, 17, (6, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    state = torch.get_rng_state()
    with torch.no_grad():
        a, b = model.nll(x), model.nll(x)
        c = model.nll(x[:3])  # a different batch gets different draws
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(a[:3], c)


def test_estimates_are_the_elbo_and_the_iwae_bound_labelled_with_k():
    model = make(iwae_k=3)
    x = DIGITS_SPEC.to_unit(torch.randint(0, 17, (4, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        elbo, iwae = model.nll_estimates(x)
    assert (elbo.kind, elbo.label) == ("ELBO", "ELBO") and torch.equal(elbo.nats, model.nll(x))
    assert (iwae.kind, iwae.label, iwae.params["k"]) == ("IWAE", "IWAE-3", 3)


def test_kl_warmup_weight():
    model = make(kl_warmup_steps=100)
    assert model.kl_weight() == 0.0
    model.step = 50
    assert model.kl_weight() == pytest.approx(0.5)
    model.step = 500
    assert model.kl_weight() == 1.0
    assert make().kl_weight() == 1.0
    x = DIGITS_SPEC.to_unit(torch.randint(0, 17, (8, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    model.step = 0
    out = model.train_step(x)
    # at beta = 0 the optimised loss is the reconstruction term alone, below the -ELBO per dim
    assert out["beta"] == 0.0 and out["loss"] < out["neg_elbo_nats_per_dim"]


def test_presets_scale_with_the_image_size_and_family_with_K():
    small = resolve_config(VAE, "standard", DIGITS_SPEC)
    big = resolve_config(VAE, "standard", CONTRACT_SPECS["32x32x3-K256"])
    assert small.max_steps < big.max_steps and small.latent_dim <= big.latent_dim
    assert isinstance(make().lik, Categorical)
    assert isinstance(make(CONTRACT_SPECS["28x28x1-K256"]).lik, DiscretisedLogistic)
    for preset in ("tiny", "quick", "standard"):
        for spec in CONTRACT_SPECS.values():
            resolve_config(VAE, preset, spec)
