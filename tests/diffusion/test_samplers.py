"""The samplers, driven by the exact denoiser, reproduce the data distribution; their names and NFE; the strided
ancestral sampler is Algorithm 2 on the respaced schedule (Nichol & Dhariwal 2021, section 4)."""
from __future__ import annotations

import pytest
import torch

from genbench.diffusion.learned_variance import eps_and_log_variance, interpolated_log_variance
from genbench.diffusion.samplers import (
    ancestral_sample, ddim_sample, ddim_timesteps, sampler_name, sampler_nfe, strided_ancestral_sample,
)
from genbench.diffusion.schedule import Schedule, extract

K = 17


def prototypes(n_pixels: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """4 random K-level images (in [-1, 1]) with probabilities .4/.3/.2/.1."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randint(0, K, (4, 1, 1, n_pixels), generator=g).double() / (K - 1) * 2 - 1
    return protos, torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)


@pytest.mark.parametrize("sampler", ["ancestral-beta", "ancestral-posterior", "ddim-20", "ddim-20-eta1",
                                     "strided-beta", "strided-posterior"])
def test_samplers_with_exact_denoiser_reproduce_the_data_distribution(oracle, sampler):
    """Driven by E[eps | x_t], sampling returns the prototypes with their probabilities (a sign or
    coefficient error in a step breaks this)."""
    protos, probs = prototypes(n_pixels=4)
    s = Schedule.make("cosine", 100)
    g = torch.Generator().manual_seed(6)
    n = 600
    eps = oracle(s, protos, probs)
    if sampler.startswith("ancestral"):
        x, nfe = ancestral_sample(eps, s, (n, 1, 1, 4), generator=g, variance=sampler.split("-")[1], dtype=torch.float64)
        assert nfe == 100
    elif sampler.startswith("strided"):
        x, nfe = strided_ancestral_sample(eps, s, (n, 1, 1, 4), 20, generator=g, variance=sampler.split("-")[1],
                                          dtype=torch.float64)
        assert nfe == 20
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


@pytest.mark.parametrize("steps,nfe,name", [(None, 20, "ancestral-20"), (20, 20, "ancestral-20"), (50, 20, "ancestral-20"),
                                            (5, 5, "DDIM-5"), (1, 1, "DDIM-1")])
def test_sampler_names_and_nfe_match_what_the_loops_do(steps, nfe, name):
    s = Schedule.make("linear", 20)
    eps = lambda x, t: torch.zeros_like(x)  # noqa: E731
    if steps is None or steps >= s.T:
        _, ran = ancestral_sample(eps, s, (2, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    else:
        _, ran = ddim_sample(eps, s, (2, 1, 2, 2), steps, generator=torch.Generator().manual_seed(0))
    assert sampler_nfe(s.T, steps) == ran == nfe
    assert sampler_name(s.T, steps) == name
    assert sampler_name(s.T, 5, eta=1.0) == "DDIM-5, eta=1" and sampler_name(s.T, None, eta=1.0) == "ancestral-20"


def test_strided_ancestral_with_the_exact_denoiser_is_exact_for_gaussian_data():
    """x_0 ~ N(m, I): E[eps | x_t] = sqrt(1 - abar_t) (x_t - sqrt(abar_t) m), and Algorithm 2 with sigma^2 = beta
    reproduces q(x_{t'} | x_t) exactly when beta and alpha are the respaced ones (mean sqrt(alpha) x_t +
    beta sqrt(abar_{t'}) m).  So after 5 respaced steps of a 100-step schedule the samples are N(m, abar_{S_0})
    (the last step adds no noise).  Taking the original beta_{S_i} instead of the respaced ones moves the mean
    to about 0.2 m: far outside the tolerance."""
    m = 0.5
    s = Schedule.make("linear", 100)

    def eps(x, t):
        ab = extract(s.alpha_bar, t, x)
        return (1 - ab).sqrt() * (x - ab.sqrt() * m)

    n = 20_000
    x, nfe = strided_ancestral_sample(eps, s, (n, 1, 1, 2), 5, generator=torch.Generator().manual_seed(1),
                                      variance="beta", clip_x0=None, dtype=torch.float64)
    assert nfe == 5
    var0 = float(s.alpha_bar[0])
    se_mean, se_var = (var0 / (2 * n)) ** 0.5, var0 * (2 / (2 * n - 1)) ** 0.5
    assert abs(float(x.mean()) - m) < 4 * se_mean
    assert abs(float(x.var()) - var0) < 4 * se_var


def test_strided_ancestral_with_every_index_is_algorithm_2():
    """steps = T: the respaced schedule is the schedule itself (to rounding), so the same draws give the same
    samples as ``ancestral_sample``, for a fixed and for a learned variance (eq. 15 with the network's v)."""
    s = Schedule.make("cosine", 30)
    w = torch.linspace(0.5, 1.5, 8).reshape(1, 2, 2, 2).double()

    def net(x, t):  # eps and v from a fixed smooth map of (x, t)
        tt = t.double().reshape(-1, 1, 1, 1) / s.T
        return torch.cat([torch.tanh(w[:, :1] * x + tt), torch.sigmoid(w[:, 1:] * x - tt)], 1)

    shape = (6, 1, 2, 2)
    for variance in ("beta", "posterior"):
        a, _ = ancestral_sample(lambda x, t: net(x, t)[:, :1], s, shape, generator=torch.Generator().manual_seed(3),
                                variance=variance, dtype=torch.float64)
        b, _ = strided_ancestral_sample(lambda x, t: net(x, t)[:, :1], s, shape, s.T,
                                        generator=torch.Generator().manual_seed(3), variance=variance,
                                        dtype=torch.float64)
        assert torch.allclose(a, b, atol=1e-10)
    a, _ = ancestral_sample(lambda x, t: eps_and_log_variance(s, net(x, t), t, 1), s, shape,
                            generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    b, _ = strided_ancestral_sample(lambda x, t: (net(x, t)[:, :1], net(x, t)[:, 1:]), s, shape, s.T,
                                    learned_variance=True, generator=torch.Generator().manual_seed(4),
                                    dtype=torch.float64)
    assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("v,variance", [(1.0, "beta"), (0.0, "posterior")])
def test_strided_learned_variance_interpolates_the_respaced_beta_and_beta_tilde(v, variance):
    """v = 1 is the respaced beta and v = 0 the respaced beta~ (eq. 15 on the respaced schedule): the same
    samples as the fixed variance of that name on the same draws."""
    s = Schedule.make("cosine", 100)
    eps = lambda x, t: 0.3 * x  # noqa: E731
    shape = (5, 1, 3, 3)
    fixed, _ = strided_ancestral_sample(eps, s, shape, 10, variance=variance,
                                        generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    learned, _ = strided_ancestral_sample(lambda x, t: (eps(x, t), torch.full_like(x, v)), s, shape, 10,
                                          learned_variance=True, generator=torch.Generator().manual_seed(2),
                                          dtype=torch.float64)
    assert torch.allclose(fixed, learned, atol=1e-10)
    sub = s.respaced(sorted(ddim_timesteps(100, 10)))
    half = interpolated_log_variance(sub, torch.tensor([3]), torch.full((1, 1), 0.5, dtype=torch.float64))
    assert torch.allclose(half.exp().squeeze(), (sub.betas[3] * sub.posterior_variance[3]).sqrt())
    with pytest.raises(ValueError, match="eps, v"):
        strided_ancestral_sample(eps, s, shape, 10, learned_variance=True)


def test_strided_sampler_names():
    assert sampler_name(1000, 100, strided="ancestral") == "ancestral-100"
    assert sampler_name(1000, None, strided="ancestral") == "ancestral-1000"
    assert sampler_name(1000, 50, strided="ddim") == "DDIM-50"
    with pytest.raises(ValueError, match="strided sampler"):
        sampler_name(1000, 50, strided="euler")
