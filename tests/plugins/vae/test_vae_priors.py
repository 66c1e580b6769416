"""The VAE's priors against torch.distributions, and the bounds with a learned mixture prior."""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genbench.config import resolve_config
from genbench.testing import DIGITS_SPEC, contract_batch
from genbench_vae import VAE
from genbench_vae.bounds import kl_to_standard_normal
from genbench_vae.priors import MixturePrior, StandardNormalPrior, make_prior


def reference_mixture(prior: MixturePrior) -> MixtureSameFamily:
    comp = Independent(Normal(prior.means, (0.5 * prior.logvars).exp()), 1)
    return MixtureSameFamily(Categorical(logits=prior.logits), comp)


def random_mixture(latent: int = 3, m: int = 5, seed: int = 0) -> MixturePrior:
    prior = MixturePrior(latent, m).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        prior.means.copy_(3 * torch.randn(m, latent, generator=g, dtype=torch.float64))
        prior.logvars.copy_(torch.randn(m, latent, generator=g, dtype=torch.float64))
        prior.logits.copy_(torch.randn(m, generator=g, dtype=torch.float64))
    return prior


@torch.no_grad()
def test_mixture_log_prob_matches_torch_distributions():
    prior = random_mixture()
    z = 2 * torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z), reference_mixture(prior).log_prob(z), rtol=1e-12, atol=1e-12)


@torch.no_grad()
def test_mixture_draws_follow_the_weights_and_components():
    """Well separated components: the nearest mean identifies the component; counts within 4 binomial SEs."""
    prior = MixturePrior(2, 3)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-20.0, 0.0], [0.0, 20.0], [20.0, 0.0]]))
        prior.logvars.copy_(torch.tensor([[0.0, 0.0], [-2.0, -2.0], [1.0, 1.0]]))
        prior.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    state = torch.get_rng_state()
    n = 20000
    z = prior.sample(n, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state), "sampling must use only the generator"
    assert torch.equal(z, prior.sample(n, torch.Generator().manual_seed(0)))
    which = torch.cdist(z, prior.means).argmin(1)
    probs = torch.softmax(prior.logits, 0)
    for k in range(3):
        share = float((which == k).float().mean())
        assert abs(share - float(probs[k])) < 4 * math.sqrt(float(probs[k] * (1 - probs[k])) / n)
        sd = float(z[which == k].std(0).mean())
        assert abs(sd - math.exp(0.5 * float(prior.logvars[k, 0]))) < 0.05 * math.exp(0.5 * float(prior.logvars[k, 0]))


def test_standard_prior_is_the_closed_form_and_make_prior_checks_names():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    assert torch.equal(StandardNormalPrior(3).kl(mu, logvar), kl_to_standard_normal(mu, logvar))
    assert isinstance(make_prior("mixture", 3, 4), MixturePrior)
    try:
        make_prior("vamp", 3, 4)
    except ValueError as err:
        assert "'standard' or 'mixture'" in str(err)
    else:
        raise AssertionError("an unknown prior must raise")


def mixture_model(**over) -> VAE:
    torch.manual_seed(0)
    model = VAE(resolve_config(VAE, "tiny", DIGITS_SPEC, {"prior": "mixture", "prior_components": 3, **over}),
                DIGITS_SPEC)
    with torch.no_grad():  # move the prior away from its initial state so a wrong log p(z) would show
        model.prior.logits.copy_(torch.tensor([0.5, -1.0, 0.2]))
        model.prior.logvars.mul_(0).add_(-0.5)
    model.train(False)
    return model


@torch.no_grad()
def test_elbo_with_mixture_prior_is_reconstruction_minus_monte_carlo_kl():
    """ELBO = mean_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] over the same draws, by torch.distributions."""
    model = mixture_model()
    x = contract_batch(DIGITS_SPEC, n=6)
    levels = DIGITS_SPEC.to_levels(x)
    eps = torch.randn(3, 6, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    elbo, recon, kl = model.elbo(x, eps)
    mu, logvar = model.encoder(x)
    q, p = Normal(mu, (0.5 * logvar).exp()), reference_mixture(model.prior)
    z = mu + (0.5 * logvar).exp() * eps  # (3, 6, L)
    ref_kl = (q.log_prob(z).sum(-1) - p.log_prob(z)).mean(0)
    logits = model.decoder(z).reshape(3, 6, 1, 17, 8, 8).permute(0, 1, 2, 4, 5, 3)
    ref_recon = Categorical(logits=logits).log_prob(levels.expand(3, *levels.shape)).flatten(2).sum(-1).mean(0)
    torch.testing.assert_close(kl, ref_kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(recon, ref_recon, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(elbo, ref_recon - ref_kl, rtol=1e-5, atol=1e-3)
    # IWAE with k = 1 on one draw is exactly that draw's log weight under the mixture prior
    one = model.iwae(x, 1, eps[:1])
    ref_one = (Categorical(logits=logits[0]).log_prob(levels).flatten(1).sum(-1)
               + p.log_prob(z[0]) - q.log_prob(z[0]).sum(-1))
    torch.testing.assert_close(one, ref_one, rtol=1e-5, atol=1e-3)


@torch.no_grad()
def test_iwae_is_tighter_than_the_elbo_with_the_mixture_prior():
    model = mixture_model(elbo_samples=200)
    x = contract_batch(DIGITS_SPEC, n=16)
    assert float(-model.iwae(x, 100).mean()) < float(model.nll(x).mean())


def test_the_prior_is_trained_and_sampled_from():
    model = mixture_model()
    model.train(True)
    before = model.prior.means.detach().clone()
    model.train_step(contract_batch(DIGITS_SPEC, n=8))
    assert not torch.equal(before, model.prior.means.detach()), "the mixture's parameters must be optimised"
    model.train(False)
    model.config.sample_mode = "mode"
    with torch.inference_mode():
        got = model.sample(16, generator=torch.Generator().manual_seed(4))
        z = model.prior.sample(16, torch.Generator().manual_seed(4))
        ref = DIGITS_SPEC.to_unit(model.decoder(z).argmax(2))
    assert torch.equal(got, ref)
    assert resolve_config(VAE, "standard", DIGITS_SPEC).prior == "mixture"
