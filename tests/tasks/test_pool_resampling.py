"""Importance resampling over a pool of prior draws (genbench.tasks.pool_resampling), checked against brute force
and against the exact conditional of a tiny discrete-latent model computed by enumeration."""
from __future__ import annotations

import torch

from genbench.nn.discrete import make_likelihood
from genbench.tasks.pool_resampling import effective_sample_size, pool_log_weights, resample


def test_weights_are_the_known_sub_pixels_log_likelihood_under_each_pool_member():
    torch.manual_seed(0)
    lik = make_likelihood("categorical", 5)
    params = torch.randn(7, 2, 5, 3, 4)  # 7 pool members, 2 channels, 5 levels, 3x4 pixels
    levels = torch.randint(0, 5, (3, 2, 3, 4))
    known = torch.rand(3, 1, 3, 4) < 0.5
    got = pool_log_weights(lik, params, levels, known, chunk=3)  # chunks of 3, 3 and 1
    want = torch.empty(3, 7, dtype=torch.float64)
    for i in range(3):
        for m in range(7):
            lp = lik.log_prob(params[m : m + 1], levels[i : i + 1])[0]  # (C, H, W)
            want[i, m] = lp.double()[known[i].expand_as(lp)].sum()
    assert got.shape == (3, 7)
    assert torch.allclose(got, want, atol=1e-9)


def test_effective_sample_size_of_equal_and_of_one_dominant_weight():
    logw = torch.tensor([[0.0] * 8, [0.0] + [-1000.0] * 7, [0.0, 0.0, -1000.0, -1000.0, -1000.0, -1000.0, -1000.0, -1000.0]])
    assert torch.allclose(effective_sample_size(logw), torch.tensor([8.0, 1.0, 2.0], dtype=torch.float64))


def test_resampling_draws_the_exact_posterior_of_a_tiny_latent_model():
    """z in {0, 1, 2} with prior pi; a categorical decoder over 3 levels for each of 4 pixels given z.  The known
    pixels k (pixels 0 and 1) give p(z | k) propto pi_z prod_{d known} p(x_d | z) by enumeration; SIR over a pool
    of M prior draws keeps z with that law (n images with the same known pixels: frequencies within 4 binomial
    standard errors), and a wrong weighting (all pixels, or no prior) would not."""
    gen = torch.Generator().manual_seed(1)
    lik = make_likelihood("categorical", 3)
    prior = torch.tensor([0.6, 0.3, 0.1])
    logits = torch.tensor([[[2.0, 0.0, -1.0]] * 4, [[-1.0, 1.0, 1.0]] * 4, [[0.0, 0.0, 3.0]] * 4])  # (z, pixel, level)
    table = logits.permute(0, 2, 1).reshape(3, 1, 3, 1, 4)  # (z, C=1, K, H=1, W=4)
    x = torch.tensor([[[[2, 2, 0, 1]]]])  # one image's levels (1, 1, 1, 4)
    known = torch.tensor([[[[True, True, False, False]]]])
    logp = torch.log_softmax(logits, dim=2)  # (z, pixel, level)
    post = prior.log() + logp[:, 0, 2] + logp[:, 1, 2]
    exact = torch.softmax(post, 0)
    pool_z = torch.multinomial(prior, 20_000, replacement=True, generator=gen)
    n = 4000
    logw = pool_log_weights(lik, table[pool_z], x.expand(n, -1, -1, -1), known.expand(n, -1, -1, -1))
    kept = pool_z[resample(logw, gen)]
    freq = torch.bincount(kept, minlength=3).double() / n
    se = (exact * (1 - exact) / n).sqrt().double()
    assert ((freq - exact.double()).abs() <= 4 * se + 1e-3).all(), (freq, exact)
    assert (exact - prior).abs().max() > 0.2  # the posterior is far from the prior: the check has teeth
    every_pixel = torch.softmax(post + logp[:, 2, 0] + logp[:, 3, 1], 0)
    no_prior = torch.softmax(logp[:, 0, 2] + logp[:, 1, 2], 0)
    assert (every_pixel - exact).abs().max() > 0.05 and (no_prior - exact).abs().max() > 0.05


def test_the_rows_summarise_the_reported_effective_sample_sizes():
    from genbench.tasks.run import summarise_diagnostics

    class Model:
        pass

    model = Model()
    from genbench.tasks.pool_resampling import record_effective_sample_size

    record_effective_sample_size(model, torch.tensor([1.0, 3.0]))
    record_effective_sample_size(model, torch.tensor([2.0]))
    assert summarise_diagnostics(model.restoration_diagnostics) == {
        "effective_sample_size_median": 2.0, "effective_sample_size_min": 1.0}
    assert summarise_diagnostics({"effective_sample_size": []}) == {}
