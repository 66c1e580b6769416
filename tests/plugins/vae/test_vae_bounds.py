"""ELBO and IWAE-k of the VAE against independent references (torch.distributions, closed forms, entropy)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Normal, kl_divergence

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import DIGITS_SPEC, contract_batch
from genbench_vae import VAE
from genbench_vae.bounds import (
    iwae_bound, kl_to_standard_normal, log_importance_weights, log_normal, log_standard_normal, reparameterise,
)


def make_model(spec: DataSpec = DIGITS_SPEC, **over) -> VAE:
    torch.manual_seed(0)
    model = VAE(resolve_config(VAE, "tiny", spec, over), spec)
    model.train(False)
    return model


def reference_log_px_z(model: VAE, z: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """log p(x|z) with torch.distributions.Categorical over the decoder's K logits (categorical decoder)."""
    logits = model.decoder(z).permute(0, 1, 3, 4, 2)  # (B, C, H, W, K)
    return TorchCategorical(logits=logits).log_prob(levels).flatten(1).sum(1)


def test_kl_closed_form_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), ref)
    z = torch.randn(5, 7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(log_normal(z, mu, logvar), Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1))
    torch.testing.assert_close(log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


@torch.no_grad()
def test_elbo_equals_reconstruction_minus_kl_computed_separately():
    model = make_model()
    x = contract_batch(DIGITS_SPEC, n=6)
    levels = DIGITS_SPEC.to_levels(x)
    eps = torch.randn(3, 6, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    elbo, recon, kl = model.elbo(x, eps)
    mu, logvar = model.encoder(x)
    ref_recon = torch.stack([reference_log_px_z(model, mu + (0.5 * logvar).exp() * e, levels) for e in eps]).mean(0)
    ref_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(recon, ref_recon, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(kl, ref_kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(elbo, ref_recon - ref_kl, rtol=1e-5, atol=1e-3)
    assert (recon < 0).all() and (kl > 0).all()
    torch.testing.assert_close(model.nll(x), -model.elbo(x)[0])  # nll is -ELBO, deterministic per batch


@torch.no_grad()
def test_iwae_with_one_sample_is_the_single_draw_elbo():
    """Same eps: L_1 = log p(x|z) + log p(z) - log q(z|x) (Burda et al. eq. 8, k=1), by torch.distributions."""
    model = make_model()
    x = contract_batch(DIGITS_SPEC, n=6)
    levels = DIGITS_SPEC.to_levels(x)
    eps = torch.randn(1, 6, model.config.latent_dim, generator=torch.Generator().manual_seed(2))
    mu, logvar = model.encoder(x)
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * eps[0]
    ref = reference_log_px_z(model, z, levels) + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    torch.testing.assert_close(model.iwae(x, 1, eps), ref, rtol=1e-5, atol=1e-3)


@torch.no_grad()
def test_iwae_one_equals_elbo_in_expectation():
    """E_eps[L_1] = ELBO with the closed-form KL.  With common draws the difference is the Monte Carlo
    error of KL = E_q[log q - log p]; 4000 draws, tolerance 4 standard errors of that mean."""
    model = make_model()
    x = contract_batch(DIGITS_SPEC, n=4)
    n = 4000
    eps = torch.randn(n, 4, model.config.latent_dim, generator=torch.Generator().manual_seed(3))
    mu, logvar = model.encoder(x)
    levels = DIGITS_SPEC.to_levels(x)
    z = reparameterise(mu, logvar, eps)
    log_w = log_importance_weights(model.log_px_given_z(z, levels), z, mu, logvar)  # (n, B)
    elbo, _, _ = model.elbo(x, eps)  # same draws for the reconstruction term, closed-form KL
    diff = log_w - elbo  # mean zero iff E[L_1] = ELBO
    se = diff.std(0) / math.sqrt(n)
    assert (diff.mean(0).abs() < 4 * se + 1e-4).all(), (diff.mean(0), se)
    # and iwae(k=1) on each draw is exactly log w
    torch.testing.assert_close(model.iwae(x, 1, eps[:1]), log_w[0], rtol=1e-5, atol=1e-3)


@torch.no_grad()
def test_iwae_k_is_tighter_than_the_elbo_on_average():
    """Burda et al. Theorem 1: ELBO = L_1 <= L_10 <= L_100 in expectation (means over images)."""
    model = make_model(elbo_samples=200)
    x = contract_batch(DIGITS_SPEC, n=16)
    neg_elbo = model.nll(x).mean()
    neg_iwae = {k: -model.iwae(x, k).mean() for k in (1, 10, 100)}
    assert neg_iwae[100] <= neg_iwae[10] <= neg_elbo + 0.05 * abs(float(neg_elbo))
    assert neg_iwae[100] < neg_elbo  # strict: an untrained encoder leaves a large gap
    assert abs(float(neg_iwae[1] - neg_elbo)) < 0.05 * float(neg_elbo)
    est = {e.label: e for e in model.nll_estimates(x)}
    assert set(est) == {"ELBO", f"IWAE-{model.config.iwae_k}"}
    assert est[f"IWAE-{model.config.iwae_k}"].params == {"k": model.config.iwae_k}


def test_iwae_chunking_does_not_change_the_bound():
    g = torch.Generator().manual_seed(5)
    mu, logvar = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(50, 3, 4, generator=g, dtype=torch.float64)
    target = torch.randn(3, 4, generator=g, dtype=torch.float64)
    f = lambda z: -((z - target) ** 2).sum(-1)  # noqa: E731  any log-likelihood of z
    torch.testing.assert_close(iwae_bound(mu, logvar, eps, f, 7), iwae_bound(mu, logvar, eps, f, 50))


def known_entropy_data(n: int, seed: int) -> tuple[torch.Tensor, float]:
    """8x8, K=17: one of 4 prototypes (probs .4 .3 .2 .1) with base levels in {0,4,8,12}, plus independent
    uniform noise in {0..3} per pixel.  x determines the prototype (base = 4 floor(x/4)), so
    H(x) = H(prototype) + 64 log 4 nats exactly."""
    g = torch.Generator().manual_seed(1234)
    protos = 4 * torch.randint(0, 4, (4, 1, 8, 8), generator=g)
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(probs, n, replacement=True, generator=g)
    x = protos[idx] + torch.randint(0, 4, (n, 1, 8, 8), generator=g)
    entropy = float(-(probs * probs.log()).sum()) + 64 * math.log(4)
    return DIGITS_SPEC.to_unit(x), entropy


@pytest.mark.parametrize("family,prior", [("categorical", "standard"), ("logistic", "standard"),
                                          ("categorical", "mixture")])
def test_bounds_are_never_below_the_entropy_of_known_entropy_data(family, prior):
    """E_x[-ELBO] >= E_x[-IWAE_k] >= E_x[-log P(x)] >= H(x): checked on 400 fresh draws, allowing the
    Monte Carlo noise of the data average (4 standard errors).  The bound must also be informative:
    after short training it is within 25% of H (a uniform model pays 64 ln 17 = 181 nats vs H = 90)."""
    spec = DIGITS_SPEC
    train, entropy = known_entropy_data(2048, seed=0)
    test, _ = known_entropy_data(400, seed=1)
    torch.manual_seed(0)
    cfg = resolve_config(VAE, "tiny", spec, {"decoder_likelihood": family, "prior": prior, "latent_dim": 4, "channels": 16,
                                             "lr": 3e-3, "batch_size": 128, "iwae_k": 20})
    model = VAE(cfg, spec)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        model.train_step(train[torch.randint(0, len(train), (128,), generator=g)])
        model.step += 1
    model.train(False)
    with torch.no_grad():
        est = {e.label: e.nats.double() for e in model.nll_estimates(test)}
    for label, nats in est.items():
        se = float(nats.std() / math.sqrt(len(nats)))
        assert float(nats.mean()) + 4 * se >= entropy, f"{label} {float(nats.mean()):.2f} nats < H = {entropy:.2f}"
    assert float(est["ELBO"].mean()) < 1.25 * entropy, f"ELBO {float(est['ELBO'].mean()):.1f} vs H {entropy:.1f}"
    assert float(est["IWAE-20"].mean()) <= float(est["ELBO"].mean()) + 0.5
    print(family, prior, {k: round(float(v.mean()), 2) for k, v in est.items()}, "H", round(entropy, 2))
