"""Importance sampling of t (Nichol & Dhariwal 2021, section 3.3): uniform until every t has 10 values, then
p_t proportional to sqrt(E[L_t^2]) (mixed with 0.1% uniform); the weighted estimate of sum_t L_t is unbiased
(Monte Carlo against the exact sum on a small T) and has lower variance than uniform t on skewed terms."""
from __future__ import annotations

import math

import pytest
import torch

from genbench.diffusion.importance import ImportanceSampler


def filled(T: int, values: torch.Tensor, history: int = 10) -> ImportanceSampler:
    """A sampler whose history of t holds ``values[t, :]`` (in order)."""
    s = ImportanceSampler(T, history=history)
    for j in range(history):
        s.update(torch.arange(T), values[:, j])
    return s


def test_uniform_until_every_t_has_a_full_history():
    s = ImportanceSampler(5, history=3)
    assert torch.equal(s.probs(), torch.full((5,), 0.2, dtype=torch.float64))
    for _ in range(3):
        s.update(torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]))  # t = 4 never seen
    assert not s.ready and torch.equal(s.probs(), torch.full((5,), 0.2, dtype=torch.float64))
    s.update(torch.tensor([4, 4, 4]), torch.tensor([5.0, 5.0, 5.0]))
    assert s.ready and not torch.allclose(s.probs(), torch.full((5,), 0.2, dtype=torch.float64))


def test_probabilities_follow_the_root_mean_square_of_the_history():
    T = 6
    g = torch.Generator().manual_seed(0)
    values = torch.rand(T, 10, generator=g, dtype=torch.float64) * torch.arange(1, T + 1).double()[:, None]
    s = filled(T, values)
    rms = values.pow(2).mean(1).sqrt()
    expected = 0.999 * rms / rms.sum() + 0.001 / T
    torch.testing.assert_close(s.probs(), expected, rtol=1e-12, atol=0)
    assert abs(float(s.probs().sum()) - 1) < 1e-12
    # p_t / p_u = sqrt(E[L_t^2] / E[L_u^2]) up to the uniform share
    ratio = (s.probs() - 0.001 / T) / (s.probs()[0] - 0.001 / T)
    torch.testing.assert_close(ratio, rms / rms[0], rtol=1e-10, atol=0)


def test_history_keeps_the_last_values_per_t():
    s = ImportanceSampler(2, history=3)
    for v in [1.0, 2.0, 3.0, 4.0, 5.0]:
        s.update(torch.tensor([0]), torch.tensor([v]))
    assert s.values[0].tolist() == [3.0, 4.0, 5.0] and int(s.counts[0]) == 3 and int(s.counts[1]) == 0
    state = s.state_dict()
    s2 = ImportanceSampler(2, history=3)
    s2.load_state_dict(state)
    assert torch.equal(s2.values, s.values) and torch.equal(s2.counts, s.counts)
    with pytest.raises(ValueError, match="does not fit"):
        ImportanceSampler(3, history=3).load_state_dict(state)


def test_weighted_estimate_is_unbiased_and_lower_variance_on_skewed_terms():
    """sum_t L_t by enumeration vs the mean of T * weight * L_t over 40000 draws of t ~ p (4 std. errors); the
    terms fall like 1/t^2 (as the bound's do), so p_t ~ sqrt(E[L_t^2]) must beat uniform t."""
    T = 12
    L = 1.0 / torch.arange(1, T + 1, dtype=torch.float64) ** 2
    g = torch.Generator().manual_seed(1)
    noisy = L[:, None] * (1 + 0.3 * torch.randn(T, 10, generator=g, dtype=torch.float64))  # the history
    s = filled(T, noisy)
    exact = float(L.sum())
    # exact expectation by enumeration: sum_t p_t * T * L_t / (T p_t) = sum_t L_t
    p = s.probs()
    assert abs(float((p * T * L / (T * p)).sum()) - exact) < 1e-12
    t, w = s.sample(40000, generator=torch.Generator().manual_seed(2))
    assert t.dtype == torch.long and 0 <= int(t.min()) and int(t.max()) < T
    est = T * w.double() * L[t]
    se = float(est.std() / math.sqrt(len(est)))
    assert abs(float(est.mean()) - exact) < 4 * se, (float(est.mean()), exact, se)
    # the draws follow p (chi-square-free check: every frequency within 5 binomial std. errors)
    freq = torch.bincount(t, minlength=T).double() / len(t)
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / len(t)).sqrt() + 1e-12).all()
    uniform = T * L[torch.randint(0, T, (40000,), generator=torch.Generator().manual_seed(3))]
    assert est.var() < 0.5 * uniform.var(), (float(est.var()), float(uniform.var()))


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="history >= 1"):
        ImportanceSampler(10, history=0)
