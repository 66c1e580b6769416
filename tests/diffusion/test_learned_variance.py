"""Learned variances (Nichol & Dhariwal 2021): eq. 15 at its end points against the closed forms, the stop-gradient
of L_hybrid (eq. 16), the learned variance reaching the sampler and the bound, and the clipped mean of the bound."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion.decoders import discretised_gaussian_nll
from genbench.diffusion.learned_variance import (
    eps_and_log_variance, hybrid_loss, interpolated_log_variance, options_error, split_output,
)
from genbench.diffusion.samplers import ancestral_sample
from genbench.diffusion.schedule import Schedule, clamped_eps, model_mean, p_mean, q_posterior, q_sample
from genbench.diffusion.vlb import vlb_term, vlb_terms

K = 17
L0 = discretised_gaussian_nll(K)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_interpolation_is_beta_at_one_and_posterior_at_zero(kind):
    s = Schedule.make(kind, 50)
    t = torch.arange(50)
    like = torch.zeros(50, 1, 2, 2, dtype=torch.float64)
    beta = s.betas.reshape(50, 1, 1, 1).expand_as(like)
    # beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t, written out here; its first entry is 0 and is clipped to the
    # second's (Ho et al.'s code), as in Schedule.sigma2("posterior")
    ab = torch.cumprod(1 - s.betas, 0)
    tilde = torch.cat([torch.ones(1, dtype=torch.float64), 1 - ab[:-1]]) / (1 - ab) * s.betas
    tilde[0] = tilde[1]
    tilde = tilde.reshape(50, 1, 1, 1).expand_as(like)
    torch.testing.assert_close(interpolated_log_variance(s, t, like + 1).exp(), beta, rtol=1e-12, atol=0)
    torch.testing.assert_close(interpolated_log_variance(s, t, like).exp(), tilde, rtol=1e-12, atol=0)
    # halfway: the geometric mean; and v outside [0, 1] extrapolates (eq. 15 puts no constraint on v)
    torch.testing.assert_close(interpolated_log_variance(s, t, like + 0.5).exp(), (beta * tilde).sqrt(), rtol=1e-12, atol=0)
    assert (interpolated_log_variance(s, t, like + 2)[1:] > interpolated_log_variance(s, t, like + 1)[1:]).all()


def test_output_split_and_channel_check():
    out = torch.arange(2 * 3 * 4, dtype=torch.float64).reshape(2, 6, 2, 1)
    eps, v = split_output(out, 3)
    assert torch.equal(eps, out[:, :3]) and torch.equal(v, out[:, 3:])
    with pytest.raises(ValueError, match="outputs 4 channels"):
        split_output(out, 2)
    s = Schedule.make("cosine", 10)
    eps2, logvar = eps_and_log_variance(s, out, torch.tensor([0, 9]), 3)
    assert torch.equal(eps2, eps) and torch.allclose(logvar, interpolated_log_variance(s, torch.tensor([0, 9]), v))


def _fixed_net(out: torch.Tensor):
    return lambda xt, t: out  # the output does not depend on x_t: its gradient is that of the loss alone


@pytest.mark.parametrize("lam", [0.001, 1.0])
def test_hybrid_loss_stops_the_gradient_of_l_vlb_at_the_mean(lam):
    """d loss / d eps_theta is that of L_simple alone, whatever lambda; v gets its gradient from L_vlb only."""
    s = Schedule.make("cosine", 100)
    x0 = torch.randint(0, K, (16, 1, 4, 4)).double() / (K - 1) * 2 - 1
    base = torch.randn(16, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.3
    grads = {}
    for name, lam_ in (("simple", 0.0), ("hybrid", lam)):
        out = base.clone().requires_grad_(True)
        torch.manual_seed(1)  # the same t and eps for both
        loss, terms, t = hybrid_loss(_fixed_net(out), s, x0, L0, loss="hybrid", lam=lam_)
        loss.backward()
        grads[name] = out.grad.clone()
        assert torch.isfinite(out.grad).all() and terms.shape == (16,)
    torch.testing.assert_close(grads["hybrid"][:, :1], grads["simple"][:, :1], rtol=0, atol=0)
    assert (grads["simple"][:, 1:] == 0).all() and grads["hybrid"][:, 1:].abs().sum() > 0
    # without the stop-gradient (loss="vlb") the bound does reach eps_theta
    out = base.clone().requires_grad_(True)
    torch.manual_seed(1)
    hybrid_loss(_fixed_net(out), s, x0, L0, loss="vlb")[0].backward()
    assert out.grad[:, :1].abs().sum() > 0


def test_hybrid_loss_value_is_simple_plus_lambda_T_times_the_term_in_bits():
    s = Schedule.make("linear", 20)
    x0 = torch.randint(0, K, (8, 1, 2, 2)).double() / (K - 1) * 2 - 1
    out = torch.randn(8, 2, 2, 2, dtype=torch.float64) * 0.2
    torch.manual_seed(3)
    loss, terms, t = hybrid_loss(_fixed_net(out), s, x0, L0, loss="hybrid", lam=0.01)
    torch.manual_seed(3)
    t2 = torch.randint(0, s.T, (8,))
    eps = torch.randn_like(x0)
    assert torch.equal(t, t2)
    xt = q_sample(s, x0, t, eps)
    logvar = interpolated_log_variance(s, t, out[:, 1:])
    term = vlb_term(s, x0, xt, t, out[:, :1], L0, log_var=logvar)
    expected = ((eps - out[:, :1]) ** 2).flatten(1).mean(1) + 0.01 * s.T * term.flatten(1).mean(1) / math.log(2)
    torch.testing.assert_close(loss, expected.mean())
    torch.testing.assert_close(terms, term.flatten(1).sum(1))


def test_learned_variance_reaches_the_bound_and_the_sampler(oracle):
    """(eps, log Sigma at v = 1) gives exactly the bound and the samples of sigma^2 = beta; v = 0 those of beta~."""
    s = Schedule.make("cosine", 30)
    protos = torch.randint(0, K, (3, 1, 2, 2), generator=torch.Generator().manual_seed(0)).double() / (K - 1) * 2 - 1
    probs = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    eps_fn = oracle(s, protos, probs)
    x0 = protos.repeat_interleave(4, 0)
    for v, name in ((1.0, "beta"), (0.0, "posterior")):
        learned = lambda xt, t, v=v: (eps_fn(xt, t), interpolated_log_variance(s, t, torch.full_like(xt, v)))
        a = vlb_terms(learned, s, x0, L0, variance="beta" if v == 0 else "posterior",  # ignored: learned wins
                      generator=torch.Generator().manual_seed(1))
        b = vlb_terms(eps_fn, s, x0, L0, variance=name, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        xa, _ = ancestral_sample(learned, s, (5, 1, 2, 2), generator=torch.Generator().manual_seed(2),
                                 variance="beta" if v == 0 else "posterior", dtype=torch.float64)
        xb, _ = ancestral_sample(eps_fn, s, (5, 1, 2, 2), generator=torch.Generator().manual_seed(2), variance=name,
                                 dtype=torch.float64)
        torch.testing.assert_close(xa, xb, rtol=1e-10, atol=1e-12)


def test_clipped_mean_never_raises_a_term_for_data_inside_the_clip():
    """The bound's mean at the clamped predicted x_0 (the sampler's) is the posterior mean eq. 7 at that x_0, and
    for x_0 in [-1, 1] every KL term is at most the unclipped one; at the cosine schedule's last step a small eps
    error costs ~1/(2 alpha_T) times more without the clamp."""
    s = Schedule.make("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, K, (64, 1, 4, 4), generator=g).double() / (K - 1) * 2 - 1
    t = torch.randint(0, 1000, (64,), generator=g)
    t[:8] = 999
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    xt = q_sample(s, x0, t, noise)
    eps = noise + 0.05 * torch.randn(x0.shape, generator=g, dtype=torch.float64)  # a slightly wrong denoiser
    mean_c = model_mean(s, xt, t, eps, 1.0)
    from genbench.diffusion.schedule import predict_x0
    torch.testing.assert_close(mean_c, q_posterior(s, predict_x0(s, xt, t, eps).clamp(-1, 1), xt, t)[0])
    torch.testing.assert_close(p_mean(s, xt, t, clamped_eps(s, xt, t, eps, 1.0)), mean_c)
    clipped = vlb_term(s, x0, xt, t, eps, L0, "posterior", clip_x0=1.0)
    plain = vlb_term(s, x0, xt, t, eps, L0, "posterior")
    assert (clipped <= plain + 1e-9).all()
    last_plain, last_clipped = plain[:8].mean(), clipped[:8].mean()
    assert last_plain > 0.2 and last_clipped < 1e-3, (last_plain, last_clipped)


def test_option_errors_name_the_fix():
    assert options_error(False, "simple", "uniform") is None
    assert options_error(True, "hybrid", "importance") is None and options_error(False, "vlb", "importance") is None
    assert "loss=hybrid" in options_error(True, "simple", "uniform")
    assert "learn_sigma=true" in options_error(False, "hybrid", "uniform")
    assert "t_sampling=importance" in options_error(False, "simple", "importance")
    assert "loss must be one of" in options_error(False, "mse", "uniform")
    assert "t_sampling must be" in options_error(True, "hybrid", "sorted")
