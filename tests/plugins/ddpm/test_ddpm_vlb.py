"""The variational bound: finite, never below the entropy of data whose entropy is known exactly (even for
the Bayes-optimal denoiser, where it is nearly tight), per-t terms summing to the total, the stratified
estimate unbiased; and the samplers, driven by the exact denoiser, reproduce the data distribution."""
from __future__ import annotations

import math

import pytest
import torch

from genbench_ddpm.samplers import ancestral_sample, ddim_sample, ddim_timesteps
from genbench_ddpm.schedule import Schedule
from genbench_ddpm.vlb import strata, vlb_stratified, vlb_terms

K = 17


def prototypes(n_pixels: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """4 random K-level images (in [-1, 1]) with probabilities .4/.3/.2/.1; their entropy in nats."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randint(0, K, (4, 1, 1, n_pixels), generator=g).double() / (K - 1) * 2 - 1
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    return protos, probs, float(-(probs * probs.log()).sum())


def data_weighted(values: torch.Tensor, probs: torch.Tensor, copies: int) -> tuple[float, float]:
    """Mean of per-image values under the prototype distribution, and its standard error (images are
    ``copies`` independent draws of the estimate per prototype)."""
    v = values.double().reshape(len(probs), copies)
    means, var = v.mean(1), v.var(1) / copies
    return float((probs * means).sum()), float((probs**2 * var).sum().sqrt())


@pytest.mark.parametrize("schedule,T", [("cosine", 200), ("linear", 200)])
def test_bound_of_exact_denoiser_is_above_and_near_the_entropy(oracle, schedule, T):
    protos, probs, H = prototypes()
    s = Schedule.make(schedule, T)
    copies = 24
    x0 = protos.repeat_interleave(copies, 0)
    terms = vlb_terms(oracle(s, protos, probs), s, x0, K, variance="posterior", generator=torch.Generator().manual_seed(1))
    assert terms.shape == (len(x0), T + 1) and torch.isfinite(terms).all() and (terms >= 0).all()
    mean, se = data_weighted(terms.sum(1), probs, copies)
    # the bound is a cross-entropy upper bound: never below H (allowing 4 std. errors of Monte-Carlo noise)
    assert mean >= H - 4 * se, f"bound {mean:.4f} +- {se:.4f} nats below the entropy {H:.4f}"
    # and with the optimal denoiser it is close to H: what is left is the Gaussian reverse steps' error
    assert mean <= H + 0.6, f"bound {mean:.4f} far above the entropy {H:.4f}"


def test_bound_with_beta_variance_is_looser_but_valid(oracle):
    protos, probs, H = prototypes()
    s = Schedule.make("cosine", 100)
    x0 = protos.repeat_interleave(8, 0)
    g = torch.Generator().manual_seed(2)
    beta = vlb_terms(oracle(s, protos, probs), s, x0, K, variance="beta", generator=g).sum(1)
    post = vlb_terms(oracle(s, protos, probs), s, x0, K, variance="posterior", generator=torch.Generator().manual_seed(2)).sum(1)
    assert data_weighted(beta, probs, 8)[0] > data_weighted(post, probs, 8)[0] >= H - 1.0


def test_terms_sum_to_total_and_stratified_with_singleton_strata_is_exact(oracle):
    protos, probs, _ = prototypes()
    s = Schedule.make("linear", 30)
    x0 = protos.repeat_interleave(2, 0)
    eps = oracle(s, protos, probs)
    terms = vlb_terms(eps, s, x0, K, variance="posterior", generator=torch.Generator().manual_seed(3))
    total = vlb_stratified(eps, s, x0, K, k=s.T - 1, variance="posterior", generator=torch.Generator().manual_seed(3))
    assert torch.allclose(total.double(), terms.sum(1), rtol=1e-5)


def test_stratified_estimate_is_unbiased(oracle):
    """Averaged over many draws the 3-stratum estimate equals the all-terms total (within 4 std. errors)."""
    protos, probs, _ = prototypes(n_pixels=8)
    s = Schedule.make("cosine", 40)
    x = protos[:1].repeat(2000, 1, 1, 1)
    eps = oracle(s, protos, probs)
    full = vlb_terms(eps, s, x[:400], K, variance="posterior", generator=torch.Generator().manual_seed(4)).sum(1)
    est = vlb_stratified(eps, s, x, K, k=3, variance="posterior", generator=torch.Generator().manual_seed(5)).double()
    se = math.sqrt(full.var() / len(full) + est.var() / len(est))
    assert abs(est.mean() - full.mean()) < 4 * se, (est.mean(), full.mean(), se)


def test_strata_cover_every_step_once():
    for T, k in [(1000, 8), (1000, 32), (20, 4), (20, 100), (2, 5), (50, 1)]:
        r = strata(T, k)
        assert len(r) <= max(1, min(k, T - 1))
        covered = [i for a, b in r for i in range(a, b)]
        assert covered == list(range(1, T)), (T, k, r)


@pytest.mark.parametrize("sampler", ["ancestral-beta", "ancestral-posterior", "ddim-20", "ddim-20-eta1"])
def test_samplers_with_exact_denoiser_reproduce_the_data_distribution(oracle, sampler):
    """Driven by E[eps | x_t], sampling returns the prototypes with their probabilities (a sign or
    coefficient error in a step breaks this)."""
    protos, probs, _ = prototypes(n_pixels=4)
    s = Schedule.make("cosine", 100)
    g = torch.Generator().manual_seed(6)
    n = 600
    eps = oracle(s, protos, probs)
    if sampler.startswith("ancestral"):
        x, nfe = ancestral_sample(eps, s, (n, 1, 1, 4), generator=g, variance=sampler.split("-")[1], dtype=torch.float64)
        assert nfe == 100
    else:
        x, nfe = ddim_sample(eps, s, (n, 1, 1, 4), 20, eta=1.0 if sampler.endswith("eta1") else 0.0, generator=g,
                             dtype=torch.float64)
        assert nfe == 20
    d = ((x[:, None] - protos[None]) ** 2).flatten(2).sum(2)
    nearest = d.argmin(1)
    assert d.min(1).values.max() < (1.0 / (K - 1)) ** 2  # every sample lands on a prototype
    freq = torch.bincount(nearest, minlength=4).double() / n
    assert torch.allclose(freq, probs, atol=0.07), freq  # ~3.5 std. errors at n = 600


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    seq = ddim_timesteps(1000, 50)
    assert len(seq) == 50 and seq[0] == 999 and seq[-1] == 0 and seq == sorted(seq, reverse=True)
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)
