"""The discrete decoder likelihoods: proper probability masses over the K levels, sampling and mode."""
from __future__ import annotations

import pytest
import torch

from genbench.nn.discrete import Categorical, DiscretisedLogistic, log1mexp, make_likelihood


def random_params(lik, b=3, c=2, h=4, w=5, seed=0, spread=3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(b, c, lik.n_params, h, w, generator=g, dtype=torch.float64) * spread
    if isinstance(lik, DiscretisedLogistic):
        # locations inside and beyond [-1, 1], log-scales from very sharp (-7) to very flat (+2)
        p[:, :, 0] = torch.rand(b, c, h, w, generator=g, dtype=torch.float64) * 3 - 1.5
        p[:, :, 1] = torch.rand(b, c, h, w, generator=g, dtype=torch.float64) * 9 - 7
    return p


FAMILIES = [(Categorical, 17), (Categorical, 2), (Categorical, 256), (DiscretisedLogistic, 17),
            (DiscretisedLogistic, 2), (DiscretisedLogistic, 256)]


@pytest.mark.parametrize("cls,K", FAMILIES)
def test_probabilities_sum_to_one_over_the_K_levels(cls, K):
    lik = cls(K)
    lp = lik.log_probs_all(random_params(lik))
    assert lp.shape[-1] == K
    assert (lp <= 1e-12).all()
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(lp.shape[:-1], dtype=lp.dtype), atol=1e-9, rtol=0)


@pytest.mark.parametrize("cls,K", FAMILIES)
def test_log_prob_is_log_probs_all_at_the_level(cls, K):
    lik = cls(K)
    params = random_params(lik, seed=1)
    levels = torch.randint(0, K, (3, 2, 4, 5), generator=torch.Generator().manual_seed(2))
    ref = lik.log_probs_all(params).gather(-1, levels.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(lik.log_prob(params, levels), ref)
    torch.testing.assert_close(lik.log_likelihood(params, levels), ref.flatten(1).sum(1))


def test_discretised_logistic_matches_cdf_differences_in_float64():
    """P(k) = F(x_k + d) - F(x_k - d) with the logistic CDF F, tails at the edges (PixelCNN++ eq. 2)."""
    K = 17
    lik = DiscretisedLogistic(K)
    mu, log_s = torch.tensor(0.13, dtype=torch.float64), torch.tensor(-1.7, dtype=torch.float64)
    params = torch.stack([mu, log_s]).reshape(1, 1, 2, 1, 1)
    x = torch.linspace(-1, 1, K, dtype=torch.float64)
    d = 1.0 / (K - 1)
    upper = torch.sigmoid((x + d - mu) / log_s.exp())
    lower = torch.sigmoid((x - d - mu) / log_s.exp())
    upper[-1], lower[0] = 1.0, 0.0
    torch.testing.assert_close(lik.log_probs_all(params).reshape(K).exp(), upper - lower, atol=1e-12, rtol=1e-9)


def test_log1mexp_matches_naive_where_naive_is_accurate():
    d = torch.tensor([1e-3, 0.1, 0.69, 0.7, 2.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(d), torch.log(1 - torch.exp(-d)))
    assert torch.isfinite(log1mexp(torch.tensor([1e-30, 800.0], dtype=torch.float64))).all()


@pytest.mark.parametrize("cls", [Categorical, DiscretisedLogistic])
def test_inverse_cdf_draws_follow_the_probabilities(cls):
    """Empirical level frequencies of 40k draws vs the decoder's probabilities (chi-square, p ~ 1e-6 cut)."""
    K = 9
    lik = cls(K)
    params = random_params(lik, b=1, c=1, h=1, w=1, seed=3, spread=1.0).float()
    if cls is DiscretisedLogistic:
        params[0, 0, 1] = -1.0  # broad enough that several levels have mass
    n = 40_000
    u = torch.rand(n, 1, 1, 1, generator=torch.Generator().manual_seed(4))
    draws = lik.sample(params.expand(n, -1, -1, -1, -1), u).flatten()
    assert draws.min() >= 0 and draws.max() <= K - 1
    probs = lik.log_probs_all(params.double()).flatten().exp()
    counts = torch.bincount(draws, minlength=K).double()
    expected = n * probs
    keep = expected > 5
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    assert keep.sum() >= 3
    assert chi2 < 45.0, f"chi2 {chi2:.1f} with {int(keep.sum()) - 1} dof"


@pytest.mark.parametrize("cls,K", FAMILIES)
def test_mode_is_the_most_probable_level(cls, K):
    lik = cls(K)
    params = random_params(lik, seed=5)
    lp = lik.log_probs_all(params)
    mode = lik.mode(params)
    best = lp.max(-1).values
    torch.testing.assert_close(lp.gather(-1, mode.unsqueeze(-1)).squeeze(-1), best)


def test_auto_family_choice():
    assert isinstance(make_likelihood("auto", 17), Categorical)
    assert isinstance(make_likelihood("auto", 256), DiscretisedLogistic)
    assert isinstance(make_likelihood("logistic", 17), DiscretisedLogistic)
    with pytest.raises(ValueError, match="unknown"):
        make_likelihood("gaussian", 17)


@pytest.mark.parametrize("cls", [Categorical, DiscretisedLogistic])
def test_bf16_decoder_outputs_give_the_float32_log_probabilities_of_the_same_values(cls):
    # under bf16 autocast the decoder's params are bfloat16: the masses must still be computed in float32 (in bf16
    # the 256 level centres and their bin edges collide and the logistic's mass went NaN within three steps)
    torch.manual_seed(0)
    K = 256
    lik = cls(K)
    params = torch.randn(4, 1, lik.n_params, 6, 6) * torch.tensor([1.0, 0.5][: lik.n_params] if lik.n_params == 2
                                                                   else [2.0] * K).view(1, 1, -1, 1, 1)
    if lik.n_params == 2:
        params[:, :, 1] -= 4.0  # narrow logistics: scale ~ a level, where bf16 arithmetic breaks down
    levels = torch.randint(0, K, (4, 1, 6, 6))
    low = params.to(torch.bfloat16)
    got = lik.log_prob(low, levels)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, lik.log_prob(low.float(), levels), rtol=0, atol=0)
    torch.testing.assert_close(lik.log_probs_all(low), lik.log_probs_all(low.float()), rtol=0, atol=0)
