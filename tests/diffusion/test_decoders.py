"""The L_0 terms: the discretised Gaussian decoder is a probability mass over the K levels (Ho et al. eq. 13),
accurate in the tails; the Gaussian one is -log of the normal density."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion.decoders import discretised_gaussian_log_likelihood, discretised_gaussian_nll, gaussian_nll


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretised_gaussian_is_a_probability_mass(levels):
    """Summed over the K levels the decoder's probabilities are 1, and interior bins equal CDF differences."""
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    for mean, log_scale in ((0.3, math.log(0.01)), (-0.95, math.log(0.2)), (0.0, math.log(3.0)), (2.5, math.log(0.05))):
        m = torch.full_like(grid, mean)
        ls = torch.full_like(grid, log_scale)
        logp = discretised_gaussian_log_likelihood(grid, m, ls, levels)
        assert torch.isfinite(logp).all()
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
        normal = torch.distributions.Normal(torch.tensor(mean, dtype=torch.float64), math.exp(log_scale))
        half = 1 / (levels - 1)
        if levels > 2:
            k = levels // 2
            ref = normal.cdf(grid[k] + half) - normal.cdf(grid[k] - half)
            if ref > 1e-200:
                assert logp[k].exp().item() == pytest.approx(ref.item(), rel=1e-7)
        assert logp[0].exp().item() == pytest.approx(normal.cdf(grid[0] + half).item(), rel=1e-7, abs=1e-150)  # the reference underflows earlier


def test_discretised_gaussian_far_tail_is_finite():
    x = torch.tensor([0.0], dtype=torch.float64)
    logp = discretised_gaussian_log_likelihood(x, torch.tensor([0.9]), torch.tensor([math.log(1e-3)]), 17)
    assert torch.isfinite(logp).all() and logp.item() < -1e4


def test_l0_callables_are_the_negative_log_likelihoods():
    g = torch.Generator().manual_seed(7)
    x0 = torch.linspace(-1, 1, 17, dtype=torch.float64)[torch.randint(0, 17, (40,), generator=g)]
    mean = torch.randn(40, generator=g, dtype=torch.float64) * 0.5
    var = torch.rand(40, generator=g, dtype=torch.float64) * 0.1 + 1e-3
    ref = -discretised_gaussian_log_likelihood(x0, mean, 0.5 * var.log(), 17)
    assert torch.equal(discretised_gaussian_nll(17)(x0, mean, var), ref)
    density = torch.distributions.Normal(mean, var.sqrt()).log_prob(x0)
    assert torch.allclose(gaussian_nll(x0, mean, var), -density, rtol=1e-12)


def test_variance_floor_bounds_the_decoder_tail():
    """A mean on the wrong side of a level boundary costs thousands of nats at a tiny variance; floored at the
    noise variance of x_1 it costs what a Gaussian of that width does, and an exact mean loses almost nothing."""
    from genbench.diffusion.decoders import discretised_gaussian_nll
    K, sig = 4, 1 / 9  # a third of half a level on K = 4
    x0 = torch.tensor([[-1 / 3]], dtype=torch.float64)
    wrong = torch.tensor([[0.05]], dtype=torch.float64)  # past the boundary at 0 toward the level 1/3
    tiny = torch.tensor([[1e-4]], dtype=torch.float64)
    assert float(discretised_gaussian_nll(K)(x0, wrong, tiny)) > 10
    floored = float(discretised_gaussian_nll(K, sig**2)(x0, wrong, tiny))
    n = torch.distributions.Normal(torch.tensor(0.05, dtype=torch.float64), sig)
    expected = -math.log(float(n.cdf(torch.tensor(0.0, dtype=torch.float64)) - n.cdf(torch.tensor(-2 / 3, dtype=torch.float64))))
    assert abs(floored - expected) < 1e-9  # the level -1/3 owns [-2/3, 0]
    exact = float(discretised_gaussian_nll(K, sig**2)(x0, x0, tiny))
    assert 0 < exact <= -math.log(1 - math.erfc(3 / math.sqrt(2))) + 1e-12  # 1 - 2 Phi(-3)
