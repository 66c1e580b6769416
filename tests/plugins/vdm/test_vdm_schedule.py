"""The learned noise schedule (genbench.diffusion.learned_schedule; Kingma et al. 2021 Appendix H and I.2):
monotone, its derivative, the variance gradient of Appendix I.2, and what training does to it."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion import MonotoneGamma
from genbench.diffusion.continuous import alpha_sigma, diffusion_loss, low_discrepancy_times, q_sample

S = torch.tensor([0.01, 0.02, 0.03, 0.05])  # per-dimension std of Gaussian toy data: eq. 17 lives at gamma < -6


def gaussian_eps(z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The optimal denoiser E[eps | z] of x ~ N(0, diag S^2)."""
    a, sg = alpha_sigma(gamma[:, None])
    return sg * z / (a**2 * S**2 + sg**2)


def randomised(seed: int, features: int = 64) -> MonotoneGamma:
    """A schedule with every parameter random (raw weights of either sign, end points far apart or close)."""
    g = torch.Generator().manual_seed(seed)
    sched = MonotoneGamma(-13.3, 5.0, features=features)
    with torch.no_grad():
        for p in sched.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 3)
    return sched


@pytest.mark.parametrize("seed", range(5))
def test_schedule_is_strictly_monotone_with_its_end_points(seed):
    """gamma(t1) < gamma(t2) for t1 < t2 on a fine grid, gamma(0) = gamma_0, gamma(1) >= gamma(0), gamma' > 0
    and equal to autograd's derivative, for random parameters (weights of either sign)."""
    sched = randomised(seed)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64, requires_grad=True)
    sched = sched.double()
    gamma, dgamma = sched(t)
    assert (gamma.diff() > 0).all() and (dgamma > 0).all()
    g0, g1 = sched.endpoints()
    assert torch.allclose(gamma[0], g0) and torch.allclose(gamma[-1], g1) and g1 > g0
    (auto,) = torch.autograd.grad(gamma.sum(), t)
    assert torch.allclose(auto, dgamma, rtol=1e-9, atol=1e-9)


def test_fixed_schedule_is_linear_in_log_snr():
    sched = MonotoneGamma(-7.0, 5.0, features=8, learned=False)
    gamma, dgamma = sched(torch.linspace(0, 1, 11))
    assert torch.allclose(gamma, torch.linspace(-7.0, 5.0, 11), atol=1e-5)
    assert torch.allclose(dgamma, torch.full((11,), 12.0))
    assert not any(p.requires_grad for p in sched.parameters())


def toy_terms(sched: MonotoneGamma, n: int, g: torch.Generator, plain: bool = False):
    """One-sample diffusion losses of eq. 17 on Gaussian toy data with a deliberately imperfect denoiser (so the
    end points matter) through ``draw`` (the training path; ``plain``: the ordinary forward), plus a stand-in
    end-point term."""
    x = torch.randn(n, 4, generator=g) * S
    eps = torch.randn(n, 4, generator=g)
    t = low_discrepancy_times(n, generator=g)
    draw = None if plain else sched.draw(t)
    gamma, dgamma = sched(t) if plain else (draw.gamma, draw.dgamma)
    loss = diffusion_loss(eps, 0.8 * gaussian_eps(q_sample(x, gamma, eps), gamma), dgamma)
    g0, g1 = sched.endpoints()
    return draw, loss, 0.1 * g0**2 + 0.05 * g1**2


def test_variance_gradient_is_the_gradient_of_the_squared_loss():
    """Appendix I.2 in one backward pass: the shape parameters get d/d eta mean(L^2), the end points
    d/d gamma of mean(L) (+ their own terms), exactly as two separate backward passes give them."""
    torch.manual_seed(0)
    sched = MonotoneGamma(-6.0, 4.0, features=16)
    draw, loss, ends = toy_terms(sched, 64, torch.Generator().manual_seed(1))
    draw.minimise_variance_of(loss)
    shape, endpoints = sched.shape_parameters(), [sched.gamma_0, sched.gamma_1]
    got = torch.autograd.grad(loss.mean() + ends, shape + endpoints)
    _, loss2, ends2 = toy_terms(sched, 64, torch.Generator().manual_seed(1), plain=True)
    want_shape = torch.autograd.grad((loss2**2).mean(), shape, retain_graph=True)
    want_ends = torch.autograd.grad(loss2.mean() + ends2, endpoints)
    for a, b in zip(got, (*want_shape, *want_ends)):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), (a, b)  # float32: 2 L dL vs d(L^2)
    assert any(float(g.abs().max()) > 0 for g in want_shape)


def estimator_spread(sched: MonotoneGamma, n: int = 20_000) -> tuple[float, float]:
    """Mean and standard deviation of the one-sample estimate of eq. 17 (iid t) with the optimal denoiser."""
    g = torch.Generator().manual_seed(123)
    x, eps = torch.randn(n, 4, generator=g) * S, torch.randn(n, 4, generator=g)
    with torch.no_grad():
        gamma, dgamma = sched(torch.rand(n, generator=g))
        loss = diffusion_loss(eps, gaussian_eps(q_sample(x, gamma, eps), gamma), dgamma)
    return float(loss.mean()), float(loss.std())


def test_variance_of_the_bound_falls_as_the_schedule_trains():
    """Training only the shape on the squared loss (end points fixed, optimal denoiser of Gaussian toy data)
    lowers the estimator's standard deviation by more than a third in 150 steps (17 -> ~8.4), and leaves its mean (the
    bound, invariant to the shape between fixed end points, Sec. 5.1) within 4 standard errors."""
    torch.manual_seed(0)
    sched = MonotoneGamma(-12.0, 6.0, features=32)
    mean0, sd0 = estimator_spread(sched)
    opt = torch.optim.Adam(sched.shape_parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x, eps = torch.randn(256, 4, generator=g) * S, torch.randn(256, 4, generator=g)
        draw = sched.draw(low_discrepancy_times(256, generator=g))
        loss = diffusion_loss(eps, gaussian_eps(q_sample(x, draw.gamma, eps), draw.gamma), draw.dgamma)
        draw.minimise_variance_of(loss)
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
    mean1, sd1 = estimator_spread(sched)
    assert sd1 < 0.67 * sd0, (sd0, sd1)
    se = math.hypot(sd0, sd1) / math.sqrt(20_000)
    assert abs(mean1 - mean0) < 4 * se, (mean0, mean1, se)
