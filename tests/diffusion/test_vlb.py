"""The variational bound: finite, never below the entropy of data whose entropy is known exactly (even for
the Bayes-optimal denoiser, where it is nearly tight), per-t terms summing to the total, the stratified
estimate unbiased; with the Gaussian L_0, the bound on a density of continuous data against a closed form;
the KL terms against closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion.decoders import discretised_gaussian_nll, gaussian_nll
from genbench.diffusion.schedule import Schedule, extract
from genbench.diffusion.vlb import normal_kl, prior_kl, strata, vlb_stratified, vlb_terms

K = 17
L0 = discretised_gaussian_nll(K)  # the pixel decoder's L_0 on K levels


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
    terms = vlb_terms(oracle(s, protos, probs), s, x0, L0, variance="posterior", generator=torch.Generator().manual_seed(1))
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
    beta = vlb_terms(oracle(s, protos, probs), s, x0, L0, variance="beta", generator=g).sum(1)
    post = vlb_terms(oracle(s, protos, probs), s, x0, L0, variance="posterior", generator=torch.Generator().manual_seed(2)).sum(1)
    assert data_weighted(beta, probs, 8)[0] > data_weighted(post, probs, 8)[0] >= H - 1.0


def test_terms_sum_to_total_and_stratified_with_singleton_strata_is_exact(oracle):
    protos, probs, _ = prototypes()
    s = Schedule.make("linear", 30)
    x0 = protos.repeat_interleave(2, 0)
    eps = oracle(s, protos, probs)
    terms = vlb_terms(eps, s, x0, L0, variance="posterior", generator=torch.Generator().manual_seed(3))
    total = vlb_stratified(eps, s, x0, s.T - 1, L0, variance="posterior", generator=torch.Generator().manual_seed(3))
    assert torch.allclose(total.double(), terms.sum(1), rtol=1e-5)


def test_stratified_estimate_is_unbiased(oracle):
    """Averaged over many draws the 3-stratum estimate equals the all-terms total (within 4 std. errors)."""
    protos, probs, _ = prototypes(n_pixels=8)
    s = Schedule.make("cosine", 40)
    x = protos[:1].repeat(2000, 1, 1, 1)
    eps = oracle(s, protos, probs)
    full = vlb_terms(eps, s, x[:400], L0, variance="posterior", generator=torch.Generator().manual_seed(4)).sum(1)
    est = vlb_stratified(eps, s, x, 3, L0, variance="posterior", generator=torch.Generator().manual_seed(5)).double()
    se = math.sqrt(full.var() / len(full) + est.var() / len(est))
    assert abs(est.mean() - full.mean()) < 4 * se, (est.mean(), full.mean(), se)


def test_strata_cover_every_step_once():
    for T, k in [(1000, 8), (1000, 32), (20, 4), (20, 100), (2, 5), (50, 1)]:
        r = strata(T, k)
        assert len(r) <= max(1, min(k, T - 1))
        covered = [i for a, b in r for i in range(a, b)]
        assert covered == list(range(1, T)), (T, k, r)


def test_normal_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(4)
    m1, m2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    v1, v2 = torch.rand(50, generator=g, dtype=torch.float64) + 0.1, torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, v1.sqrt()), torch.distributions.Normal(m2, v2.sqrt()))
    assert torch.allclose(normal_kl(m1, v1, m2, v2), ref, rtol=1e-10)


def test_prior_kl_matches_formula():
    s = Schedule.make("linear", 1000)
    x0 = torch.tensor([[-1.0, 0.0, 1.0]], dtype=torch.float64)
    ab = s.alpha_bar[-1]
    ref = 0.5 * (-torch.log(1 - ab) + (1 - ab) + ab * x0**2 - 1)
    assert torch.allclose(prior_kl(s, x0), ref, rtol=1e-10)


def test_latent_vlb_of_gaussian_data_with_the_exact_denoiser():
    """u_0 ~ N(0, v): the Bayes denoiser is eps* = sqrt(1 - abar) u_t / (abar v + 1 - abar).  The bound over all
    T terms must lie above the exact -log N(u_0; 0, v) on average, and close to it (T = 1000, sigma^2 = beta)."""
    s, v, d = Schedule.make("cosine", 1000), 0.5, 2

    def eps_fn(ut, t):
        ab = extract(s.alpha_bar, t, ut)
        return (1 - ab).sqrt() * ut / (ab * v + 1 - ab)

    g = torch.Generator().manual_seed(0)
    u0 = torch.randn(400, d, 1, 1, generator=g, dtype=torch.float64) * math.sqrt(v)
    exact = (0.5 * (math.log(2 * math.pi * v) + u0**2 / v)).flatten(1).sum(1)
    gap = vlb_stratified(eps_fn, s, u0, s.T - 1, gaussian_nll, variance="beta", generator=g) - exact
    se = float(gap.std() / math.sqrt(len(gap)))
    assert float(gap.mean()) > -3 * se, (float(gap.mean()), se)
    assert float(gap.mean()) < 0.1 * d + 3 * se, (float(gap.mean()), se)
    # the stratified estimate (9 evaluations per image) agrees with the full sum in expectation
    strat = torch.stack([vlb_stratified(eps_fn, s, u0, 8, gaussian_nll, variance="beta", generator=g) for _ in range(4)]).mean(0)
    diff = strat - exact
    assert abs(float(diff.mean() - gap.mean())) < 4 * math.hypot(se, float(diff.std() / math.sqrt(len(diff)))), \
        (float(diff.mean()), float(gap.mean()))


def test_exact_denoiser_bound_with_fitted_start_clamp_and_learned_variance_is_near_the_entropy(oracle):
    """The schedule started at the levels' sigma_min, the clamped mean and a (learned-path) variance at v = 0: the
    bound of the exact denoiser stays within [H - 4 SE, H + 0.1 nats] (measured: H 1.280, bound 1.263 +- 0.023)."""
    from genbench.diffusion.learned_variance import interpolated_log_variance
    from genbench.diffusion.schedule import level_sigma_min
    protos, probs, H = prototypes()
    s = Schedule.make("cosine", 200, level_sigma_min(K))
    eps = oracle(s, protos, probs)
    learned = lambda xt, t: (eps(xt, t), interpolated_log_variance(s, t, torch.zeros_like(xt)))
    copies = 24
    x0 = protos.repeat_interleave(copies, 0)
    terms = vlb_terms(learned, s, x0, L0, generator=torch.Generator().manual_seed(1), clip_x0=1.0)
    assert torch.isfinite(terms).all() and (terms >= 0).all()
    mean, se = data_weighted(terms.sum(1), probs, copies)
    assert H - 4 * se <= mean <= H + 0.1, (mean, se, H)
