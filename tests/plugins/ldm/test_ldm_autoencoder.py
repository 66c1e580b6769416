"""Stage 1: the KL-f autoencoder's shapes, its discrete likelihoods, and that a few steps improve reconstruction."""
from __future__ import annotations

import math

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, DIGITS_SPEC, contract_batch
from genbench_ldm import LatentDiffusion
from genbench_ldm.autoencoder import AutoencoderConfig, Decoder, Encoder, spatial_sizes
from genbench.nn.discrete import make_likelihood


def make(spec: DataSpec, **overrides) -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(resolve_config(LatentDiffusion, "tiny", spec, overrides), spec)


@pytest.mark.parametrize("spec", list(CONTRACT_SPECS.values()), ids=list(CONTRACT_SPECS))
def test_round_trip_shapes(spec):
    model = make(spec)
    f = 2 if spec.height <= 16 else 4
    assert model.ae_cfg.f == f
    x = contract_batch(spec, n=3)
    mean, logvar = model.encode(x)
    expected = (3, model.ae_cfg.z_channels, math.ceil(spec.height / f), math.ceil(spec.width / f))
    assert tuple(mean.shape) == expected and tuple(logvar.shape) == expected
    params = model.networks["decoder"](mean)
    assert tuple(params.shape) == (3, spec.channels, model.lik.n_params, spec.height, spec.width)
    assert tuple(model.decode(mean).shape) == (3, *spec.shape)


@pytest.mark.parametrize("f, size, latent", [(1, 8, 8), (2, 8, 4), (4, 28, 7), (4, 32, 8), (8, 28, 4)])
def test_odd_sizes_round_trip(f, size, latent):
    cfg = AutoencoderConfig(in_channels=1, f=f, z_channels=3, ch=8, n_params=2)
    assert spatial_sizes((size, size), cfg.levels)[-1] == (latent, latent)
    mean, _ = Encoder(cfg)(torch.zeros(2, 1, size, size))
    assert tuple(mean.shape) == (2, 3, latent, latent)
    assert tuple(Decoder(cfg, (size, size))(mean).shape) == (2, 1, 2, size, size)


def test_f_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        AutoencoderConfig(f=3).levels


@pytest.mark.parametrize("kind, levels", [("categorical", 17), ("logistic", 17), ("logistic", 256), ("categorical", 4)])
def test_decoder_likelihood_is_a_probability_mass(kind, levels):
    """The K masses sum to one per sub-pixel (so -log p(x|z) >= 0), and inverse-CDF draws follow them."""
    lik = make_likelihood(kind, levels)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, 1, lik.n_params, 3, 3, generator=g) * 2
    logp = lik.log_probs_all(params.double())
    torch.testing.assert_close(logp.double().logsumexp(-1), torch.zeros(2, 1, 3, 3, dtype=torch.float64), atol=1e-5, rtol=0)
    lv = torch.randint(0, levels, (2, 1, 3, 3), generator=g)
    torch.testing.assert_close(lik.log_prob(params, lv).double(), logp.gather(-1, lv.unsqueeze(-1)).squeeze(-1).double(),
                               atol=1e-4, rtol=0)
    one = params[:1, :, :, :1, :1].expand(20000, -1, -1, -1, -1)
    draws = lik.sample(one, torch.rand(20000, 1, 1, 1, generator=g)).flatten()
    freq = torch.bincount(draws, minlength=levels).double() / len(draws)
    probs = logp[0, 0, 0, 0].exp()
    assert (freq - probs).abs().max() < 0.02, (freq - probs).abs().max()


def test_auto_likelihood_follows_the_levels():
    assert make_likelihood("auto", 17).name == "categorical"
    assert make_likelihood("auto", 256).name == "logistic"
    with pytest.raises(ValueError, match="unknown"):
        make_likelihood("gaussian", 17)


def test_reconstruction_improves_after_a_few_steps():
    spec = DIGITS_SPEC
    model = make(spec, max_steps=1000, ae_fraction=0.5, ae_ch=16, ae_lr=3e-3, kl_weight=1e-3)
    x = contract_batch(spec, n=32, seed=3)
    levels = spec.to_levels(x)

    def rec_nats() -> float:
        with torch.no_grad():
            mean, _ = model.encode(x)
            return float(-model.lik.log_prob(model.networks["decoder"](mean), levels).flatten(1).sum(1).mean())

    model.train(True)
    before = rec_nats()
    for _ in range(40):
        out = model.train_step(x)
        model.step += 1
        assert out["stage"] == 1.0
    after = rec_nats()
    assert before > 0.9 * spec.dims * math.log(spec.levels)  # an untrained decoder is near uniform over K levels
    assert after < 0.6 * before, (before, after)
