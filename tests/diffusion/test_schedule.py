"""The schedule maths against closed forms and independent derivations."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion.schedule import (
    Schedule, cosine_betas, ddim_step, eps_from_x0, linear_betas, p_mean, predict_x0, q_posterior, q_sample, q_step,
    reverse_step,
)

SCHEDULES = [Schedule.make("linear", 1000), Schedule.make("cosine", 1000), Schedule.make("linear", 50)]


def test_linear_betas_are_the_papers():
    b = linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    assert torch.allclose(b.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))
    # shorter chains scale the end points by 1000/T
    assert linear_betas(100)[-1].item() == pytest.approx(0.2)


def test_cosine_alpha_bar_matches_closed_form():
    T, s = 1000, 0.008
    ab = Schedule(cosine_betas(T, s)).alpha_bar
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    closed = f(t) / f(torch.zeros(1, dtype=torch.float64))
    unclipped = cosine_betas(T, s) < 0.999
    assert torch.allclose(ab[unclipped], closed[unclipped], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("s", SCHEDULES, ids=["linear1000", "cosine1000", "linear50"])
def test_composed_forward_steps_equal_closed_form_marginal(s):
    """Mean and variance propagated step by step through q(x_t|x_{t-1}) (eq. 2) equal eq. 4's
    sqrt(abar_t) x_0 and 1 - abar_t, and a Monte-Carlo chain of q_step agrees with q_sample's moments."""
    mean, var = torch.tensor(0.7, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for i in range(s.T):
        a = s.alphas[i]
        mean, var = a.sqrt() * mean, a * var + s.betas[i]
        if i in (0, s.T // 3, s.T - 1):
            assert mean.item() == pytest.approx((s.alpha_bar[i].sqrt() * 0.7).item(), rel=1e-9)
            assert var.item() == pytest.approx((1 - s.alpha_bar[i]).item(), rel=1e-9)
    g = torch.Generator().manual_seed(0)
    n, stop = 20000, s.T // 4
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    x = x0.clone()
    for i in range(stop + 1):
        x = q_step(s, x, torch.full((n,), i), torch.randn(n, 1, generator=g, dtype=torch.float64))
    direct = q_sample(s, x0, torch.full((n,), stop), torch.randn(n, 1, generator=g, dtype=torch.float64))
    ab = s.alpha_bar[stop].item()
    for sample in (x, direct):  # 20000 draws: mean to ~4 std. errors, variance to ~5%
        assert sample.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=4 * math.sqrt((1 - ab) / n))
        assert sample.var().item() == pytest.approx(1 - ab, rel=0.05)


@pytest.mark.parametrize("s", SCHEDULES, ids=["linear1000", "cosine1000", "linear50"])
def test_posterior_against_bayes_rule(s):
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): precision 1/(1-abar_{t-1}) + alpha_t/beta_t,
    mean = var * (sqrt(abar_{t-1}) x_0/(1-abar_{t-1}) + sqrt(alpha_t) x_t/beta_t); compared with eqs. 6-7."""
    g = torch.Generator().manual_seed(1)
    t = torch.tensor([1, 2, s.T // 2, s.T - 1])
    x0 = torch.rand(4, 3, generator=g, dtype=torch.float64) * 2 - 1
    xt = torch.randn(4, 3, generator=g, dtype=torch.float64)
    mean, var = q_posterior(s, x0, xt, t)
    ab_prev, a, b = s.alpha_bar[t - 1][:, None], s.alphas[t][:, None], s.betas[t][:, None]
    var_ref = 1 / (1 / (1 - ab_prev) + a / b)
    mean_ref = var_ref * (ab_prev.sqrt() * x0 / (1 - ab_prev) + a.sqrt() * xt / b)
    assert torch.allclose(var, var_ref.expand_as(var), rtol=1e-9)
    assert torch.allclose(mean, mean_ref, rtol=1e-9, atol=1e-12)
    # at the first step the posterior is a point mass at x_0
    m0, v0 = q_posterior(s, x0, xt, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(m0, x0, atol=1e-12) and torch.all(v0 == 0)


@pytest.mark.parametrize("s", SCHEDULES, ids=["linear1000", "cosine1000", "linear50"])
def test_reverse_step_with_true_eps_is_posterior_mean(s):
    g = torch.Generator().manual_seed(2)
    t = torch.tensor([0, 1, 7, s.T // 2, s.T - 1])
    x0 = torch.rand(5, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    xt = q_sample(s, x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    eps = eps_from_x0(s, xt, t, x0)
    assert torch.allclose(predict_x0(s, xt, t, eps), x0, atol=1e-8)
    post_mean, post_var = q_posterior(s, x0, xt, t)
    assert torch.allclose(p_mean(s, xt, t, eps), post_mean, atol=1e-8)
    for clip in (None, 1.0):
        assert torch.allclose(reverse_step(s, xt, t, eps, None, clip_x0=clip), post_mean, atol=1e-8)
    # with noise: mean + sigma_t z, and no noise at the last step (t index 0)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for variance, table in (("beta", s.betas), ("posterior", s.posterior_variance)):
        out = reverse_step(s, xt, t, eps, z, variance=variance)
        expect = post_mean + table[t].sqrt()[:, None, None, None] * z
        assert torch.allclose(out[1:], expect[1:], atol=1e-8)
        assert torch.allclose(out[0], post_mean[0], atol=1e-12)


def test_ddim_eta_one_single_steps_is_ancestral_with_posterior_variance():
    """Song et al.: eta = 1 over consecutive steps is the DDPM step with sigma^2 = beta~."""
    s = Schedule.make("cosine", 100)
    g = torch.Generator().manual_seed(3)
    t = torch.tensor([1, 10, 50, 99])
    xt = torch.randn(4, 6, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 6, generator=g, dtype=torch.float64)
    z = torch.randn(4, 6, generator=g, dtype=torch.float64)
    ddim = ddim_step(s, xt, t, t - 1, eps, z, eta=1.0)
    anc = reverse_step(s, xt, t, eps, z, variance="posterior")
    assert torch.allclose(ddim, anc, atol=1e-9)
    # eta = 0 ends at the predicted x_0 when jumping to t = -1
    assert torch.allclose(ddim_step(s, xt, t, torch.full((4,), -1), eps, None), predict_x0(s, xt, t, eps))


def test_cosine_start_fitted_to_the_levels():
    """sigma_min sets the first step's noise std exactly, keeps abar decreasing and the last step's clip; below the
    schedule's own first noise (K = 256) it changes nothing; the linear schedule refuses it."""
    from genbench.diffusion.schedule import level_sigma_min, make_betas
    for K in (4, 17):
        sig = level_sigma_min(K)
        s = Schedule.make("cosine", 1000, sig)
        ab = s.alpha_bar
        assert abs(float((1 - ab[0]).sqrt()) - sig) < 1e-12
        assert (ab[1:] < ab[:-1]).all() and float(s.betas.max()) == 0.999
        plain = Schedule.make("cosine", 1000).alpha_bar
        assert float((1 - ab[0]).sqrt()) > float((1 - plain[0]).sqrt())
    assert abs(level_sigma_min(17) - 1 / 48) < 1e-15
    assert torch.equal(Schedule.make("cosine", 1000, level_sigma_min(256)).betas, Schedule.make("cosine", 1000).betas)
    with pytest.raises(ValueError, match="cosine"):
        make_betas("linear", 100, 0.1)


def test_respaced_schedule_keeps_abar_on_the_sub_sequence():
    """Nichol & Dhariwal section 4: beta_{S_i} = 1 - abar_{S_i} / abar_{S_{i-1}} keeps abar at S; every index
    gives the schedule back; indices out of order or range are refused."""
    s = Schedule.make("cosine", 50)
    seq = [0, 7, 19, 33, 49]
    sub = s.respaced(seq)
    assert sub.T == 5
    assert torch.allclose(sub.alpha_bar, s.alpha_bar[seq], rtol=1e-9, atol=0)
    assert torch.allclose(s.respaced(list(range(50))).betas, s.betas, rtol=1e-9, atol=0)
    assert float(sub.betas[1]) == pytest.approx(1 - float(s.alpha_bar[7] / s.alpha_bar[0]), rel=1e-12)
    for bad in ([7, 0], [0, 0, 3], [0, 50], []):
        with pytest.raises(ValueError, match="ascending"):
            s.respaced(bad)
