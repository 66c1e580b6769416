"""The continuous-time bound of genbench.diffusion.continuous against closed forms (Kingma et al. 2021):
L_inf of Gaussian data under its optimal denoiser, the bound of a perfect denoiser on a known discrete
distribution, the decoder term, the prior term and the ancestral step."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion import MonotoneGamma
from genbench.diffusion.continuous import (
    alpha_sigma, continuous_bound, decoder_logits, decoder_nll_table, diffusion_loss, low_discrepancy_times,
    prior_kl, q_sample, reverse_step,
)

S = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)  # per-dimension std of the Gaussian data


def gaussian_eps(z: torch.Tensor, gamma: torch.Tensor, s: torch.Tensor = S) -> torch.Tensor:
    """E[eps | z] for x ~ N(0, diag(s^2)): sigma z / (alpha^2 s^2 + sigma^2)."""
    a, sg = alpha_sigma(gamma.double()[:, None])
    return sg * z / (a**2 * s**2 + sg**2)


def gaussian_l_inf(g0: float, g1: float, s: torch.Tensor = S) -> float:
    """1/2 sum_d int_{g0}^{g1} s^2 / (s^2 + e^g) dg = 1/2 sum_d [g - log(s^2 + e^g)]_{g0}^{g1} (eq. 17 with the
    optimal denoiser: E||eps - E[eps|z]||^2 per dim = alpha^2 s^2 / (alpha^2 s^2 + sigma^2))."""
    f = lambda g: g - torch.log(s**2 + math.exp(g))  # noqa: E731
    return float(0.5 * (f(g1) - f(g0)).sum())


def mc_l_inf(schedule, eps_fn, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of n one-sample estimates of eq. 17 (x ~ N(0, diag S^2), low-discrepancy t)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64) * S
    eps = torch.randn(n, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        gamma, dgamma = schedule(low_discrepancy_times(n, generator=g, dtype=torch.float32))
        gamma, dgamma = gamma.double(), dgamma.double()
        z = q_sample(x, gamma, eps)
        loss = diffusion_loss(eps, eps_fn(z, gamma), dgamma)
    return float(loss.mean()), float(loss.std() / math.sqrt(n))


@pytest.mark.parametrize("seed", [0, 1])
def test_continuous_loss_of_gaussian_data_matches_its_closed_form(seed):
    """Monte Carlo eq. 17 under two random learned schedules with the same end points = the analytic integral
    (schedule invariance, Sec. 5.1) within 4 standard errors (each ~0.3%); a denoiser 20% off is rejected."""
    torch.manual_seed(seed)
    schedule = MonotoneGamma(-10.0, 6.0, features=32)
    exact = gaussian_l_inf(-10.0, 6.0)
    mean, se = mc_l_inf(schedule, gaussian_eps, 200_000, seed)
    assert se < 0.005 * exact
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    wrong, _ = mc_l_inf(schedule, lambda z, g: 0.8 * gaussian_eps(z, g), 200_000, seed)
    assert abs(wrong - exact) > 4 * se  # the same tolerance rejects a denoiser 20% off


# --------------------------------------------------------------------------- a known discrete distribution
LEVELS = 4
POINTS = torch.tensor([[-1.0, 1.0], [1 / 3, -1 / 3], [1.0, 1.0]], dtype=torch.float64)  # on the K=4 grid
PROBS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def optimal_eps(z: torch.Tensor, gamma: torch.Tensor, probs: torch.Tensor = PROBS) -> torch.Tensor:
    """E[eps | z_t] under the three-point distribution ``probs``: (z - alpha E[x | z]) / sigma, E[x|z] by Bayes."""
    a, sg = alpha_sigma(gamma.double()[:, None])
    flat = z.reshape(len(z), 2)
    d2 = ((flat[:, None, :] - a[:, None] * POINTS[None]) ** 2).sum(-1)  # (B, 3)
    w = torch.softmax(probs.log()[None] - 0.5 * d2 / sg**2, dim=1)
    return ((flat - a * (w @ POINTS)) / sg).reshape(z.shape)


def bound_with_se(eps_fn, reps: int = 8, draws: int = 4096) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The bound of each support point (gamma linear from -9 to 9) as the mean of ``reps`` independent
    estimates of ``draws`` t draws each, its standard error from their spread, and the last terms."""
    x = POINTS.reshape(3, 1, 1, 2)
    gamma_fn = lambda t: (-9.0 + 18.0 * t.double(), torch.full_like(t, 18.0, dtype=torch.float64))  # noqa: E731
    runs = [continuous_bound(eps_fn, gamma_fn, x, LEVELS, draws, generator=torch.Generator().manual_seed(r),
                             chunk=8192) for r in range(reps)]
    per_rep = torch.stack([r["prior"] + r["recon"] + r["diffusion"] for r in runs])  # (reps, 3)
    return per_rep.mean(0), per_rep.std(0) / math.sqrt(reps), runs[-1]


def test_bound_of_a_perfect_denoiser_is_the_true_nll():
    """With E[eps|z_t] of the data and gamma from -9 to 9 (decoder and prior terms < 1e-3 nats) the bound of
    each support point is -log pi within 4 standard errors + 0.01 nats (32768 t draws: SE ~0.03-0.05 nats),
    and its mean under pi is not below the entropy by more than 3 standard errors.  The denoiser of the
    same points with uniform weights (a different model) misses -log pi by more than that tolerance."""
    bound, se, terms = bound_with_se(optimal_eps)
    assert float(terms["prior"].max()) < 1e-3 and float(terms["recon"].max()) < 1e-3
    true_nll = -PROBS.log()
    assert ((bound - true_nll).abs() < 4 * se + 0.01).all(), (bound, true_nll, se)
    entropy = float((PROBS * true_nll).sum())
    assert float((PROBS * bound).sum()) > entropy - 3 * float((PROBS * se).sum())
    uniform = torch.full((3,), 1 / 3, dtype=torch.float64)
    wrong, wrong_se, _ = bound_with_se(lambda z, g: optimal_eps(z, g, uniform), reps=4, draws=2048)
    assert not ((wrong - true_nll).abs() < 4 * wrong_se + 0.01).all(), (wrong, true_nll, wrong_se)


def test_decoder_table_matches_brute_force_and_normalises():
    """r_k (the decoder term per level, by quadrature over eps) = the mean of -log softmax over all K logits
    of eq. 8 on a dense grid of eps, at coarse and fine gamma_0; the K probabilities sum to one."""
    e = torch.linspace(-9, 9, 3001, dtype=torch.float64)
    w = torch.exp(-0.5 * e**2) / torch.exp(-0.5 * e**2).sum()
    for K, g0 in [(2, -2.0), (17, -7.7), (17, 0.5), (256, -13.3)]:
        gamma_0 = torch.tensor(g0, dtype=torch.float64)
        a, s = alpha_sigma(gamma_0)
        ks = torch.tensor(sorted({0, 1, 2, K // 2, K - 2, K - 1} & set(range(K))))  # edges and an interior level
        v = torch.linspace(-1, 1, K, dtype=torch.float64)
        logp = torch.log_softmax(decoder_logits(a * v[ks, None] + s * e[None], gamma_0, K), -1)  # (k, n, K)
        assert torch.allclose(logp.exp().sum(-1), torch.ones((), dtype=torch.float64), atol=1e-12)
        ref = -(logp[torch.arange(len(ks)), :, ks] * w).sum(-1)
        table = decoder_nll_table(gamma_0, K)[ks]
        assert torch.allclose(table, ref, rtol=1e-5, atol=1e-9), (K, g0, (table - ref).abs().max())


def test_prior_term_is_the_gaussian_kl():
    """KL(N(alpha x, sigma^2) || N(0, 1)) = 1/2 (alpha^2 x^2 + sigma^2 - log sigma^2 - 1), per element."""
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)
    for g in (-3.0, 0.0, 5.0, 12.0):
        a, s = alpha_sigma(torch.tensor(g, dtype=torch.float64))
        ref = 0.5 * (a**2 * x**2 + s**2 - torch.log(s**2) - 1)
        assert torch.allclose(prior_kl(x, torch.tensor(g, dtype=torch.float64)), ref, rtol=1e-10, atol=1e-15)


def test_reverse_step_is_the_posterior_at_the_predicted_x():
    """eq. 33 = q(z_s | z_t, x = x_hat) of eqs. 23-25 (mean and variance), x_hat = (z_t - sigma_t eps_hat) / alpha_t."""
    g = torch.Generator().manual_seed(0)
    z_t, eps_hat, noise = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(3))
    g_t, g_s = torch.tensor(1.5, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    (a_t, s_t), (a_s, s_s) = alpha_sigma(g_t), alpha_sigma(g_s)
    a_ts = a_t / a_s
    s2_ts = s_t**2 - a_ts**2 * s_s**2
    x_hat = (z_t - s_t * eps_hat) / a_t
    mu = a_ts * s_s**2 / s_t**2 * z_t + a_s * s2_ts / s_t**2 * x_hat
    var = s2_ts * s_s**2 / s_t**2
    assert torch.allclose(reverse_step(z_t, eps_hat, g_t, g_s, None), mu, atol=1e-12)
    assert torch.allclose(reverse_step(z_t, eps_hat, g_t, g_s, noise), mu + var.sqrt() * noise, atol=1e-12)


def test_low_discrepancy_times_are_evenly_spread():
    t = low_discrepancy_times(8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    gaps = torch.sort(t).values.diff()
    assert t.min() >= 0 and t.max() < 1 and torch.allclose(gaps, torch.full_like(gaps, 1 / 8))
