"""The latent-diffusion bound: its three terms, the change of variables for the scale factor, and the entropy
floor of a data set whose entropy is known exactly (the continuous latent VLB is tested in tests/diffusion)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.data.calibration import PrototypeMixture
from genbench.testing import DIGITS_SPEC, contract_batch
from genbench.diffusion.decoders import gaussian_nll
from genbench.diffusion.schedule import Schedule, extract
from genbench.diffusion.vlb import vlb_stratified
from genbench_ldm import LatentDiffusion


def make(spec: DataSpec, **overrides) -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(resolve_config(LatentDiffusion, "tiny", spec, overrides), spec)


def trained(spec: DataSpec, x: torch.Tensor, steps: int = 12, **overrides) -> LatentDiffusion:
    model = make(spec, max_steps=steps, ae_fraction=0.5, **overrides)
    model.train(True)
    for i in range(steps):
        model.train_step(x[torch.randint(0, len(x), (16,))])
        model.step += 1
    model.train(False)
    return model


def test_the_bound_is_the_sum_of_its_three_terms():
    spec = DIGITS_SPEC
    x = contract_batch(spec, n=8)
    model = trained(spec, contract_batch(spec, n=64, seed=1))
    assert model.stage == 2 and model.scale is not None and model.scale > 0
    with torch.no_grad():
        terms = model.bound_terms(x, strata=4, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(terms.total, terms.reconstruction + terms.neg_entropy + terms.latent_cross_entropy)
        # each term, recomputed independently from the same draws (z noise first, then the diffusion's t and noise)
        g = torch.Generator().manual_seed(5)
        mean, logvar = model.encode(x)
        std = (0.5 * logvar).exp() * model.posterior_scale  # q_c: the encoder's std times the fitted c
        z = mean + std * torch.randn(mean.shape, generator=g)
        rec = -model.lik.log_probs_all(model.networks["decoder"](z)).gather(-1, spec.to_levels(x).unsqueeze(-1))
        torch.testing.assert_close(terms.reconstruction, rec.flatten(1).sum(1).double(), atol=1e-3, rtol=1e-5)
        neg_h = -torch.distributions.Normal(mean.double(), std.double()).entropy().flatten(1).sum(1)
        torch.testing.assert_close(terms.neg_entropy, neg_h, atol=1e-4, rtol=1e-6)
        d = model.latent_dims
        assert d == model.ae_cfg.z_channels * 4 * 4
        vlb = vlb_stratified(model.bound_eps_fn, model.schedule, model.scale * z, 4, gaussian_nll,
                             variance=model.config.variance, generator=g)
        torch.testing.assert_close(terms.latent_cross_entropy, vlb - d * math.log(model.scale), atol=1e-3, rtol=1e-6)
        torch.testing.assert_close(terms.log_det, torch.full((8,), -d * math.log(model.scale), dtype=torch.float64))
        # nll() is the same bound with the batch's content-seeded draws; reproducible
        torch.testing.assert_close(model.nll(x), model.bound_terms(x).total.float())
        torch.testing.assert_close(model.nll(x), model.nll(x))
        est = model.nll_estimates(x)[0]
        assert est.kind == "ELBO" and est.params["strata"] == model.config.test_vlb_strata
        assert est.params["posterior_scale"] == model.posterior_scale
        assert est.params["z_draws_per_image"] == model.config.test_bound_z_draws
    assert (terms.reconstruction >= 0).all()


@pytest.mark.parametrize("scale", [0.01, 3.0])
def test_change_of_variables_for_the_scale_factor(scale):
    """With the exact denoiser of u ~ N(0, I) as the prior on u = s z, p_z is N(0, 1/s^2) up to the (small) VLB gap,
    so E_q[log q(z|x)] + E_q[-log p_z(z)] must match KL(q(z|x) || N(0, 1/s^2)) in closed form.  Dropping the
    -d log s of p_z(z) = s^d p_u(s z) shifts it by d |log s| (147 nats at s = 0.01, where it also turns negative)."""
    spec = DIGITS_SPEC
    model = make(spec)
    model.schedule = Schedule.make("cosine", 1000)
    model.eps_fn = lambda ut, t: (1 - extract(model.schedule.alpha_bar, t, ut)).sqrt() * ut  # E[eps | u_t], u_0 ~ N(0, I)
    model.scale = scale
    model.train(False)
    x = contract_batch(spec, n=16)
    with torch.no_grad():
        kl = torch.stack([(lambda t: t.neg_entropy + t.latent_cross_entropy)(
            model.bound_terms(x, strata=16, generator=torch.Generator().manual_seed(r))) for r in range(32)]).mean(0)
        mean, logvar = model.encode(x)
    d = model.latent_dims
    v, s2 = logvar.exp().double(), 1.0 / scale**2
    closed = 0.5 * (math.log(s2) - logvar.double() + (v + mean.double() ** 2) / s2 - 1).flatten(1).sum(1)
    assert (kl >= 0).all(), kl
    # mean over 16 images x 32 draws: Monte-Carlo error ~1.5 nats, VLB gap of the exact denoiser ~0.03 nats/dim
    gap = float(kl.mean() - closed.mean())
    tol = 0.01 * float(closed.mean()) + 0.08 * d
    assert abs(gap) <= tol, (gap, tol)
    assert d * abs(math.log(scale)) > tol  # the tolerance would catch a missing (or doubled) log det


def test_bound_stays_above_the_entropy_of_a_known_distribution():
    """A 2x2 image distribution with K=3 (81 images) whose entropy is computed by enumeration; the bound averaged
    exactly over p(x) (every image, weighted by its probability) must be >= H(p) after some training."""
    protos = np.array([[[[0, 2], [2, 0]]], [[[2, 2], [0, 0]]]], dtype=np.uint8)
    mix = PrototypeMixture(prototypes=protos, weights=np.array([0.7, 0.3]), levels=3, noise=0.3)
    entropy = mix.entropy_by_enumeration_nats()
    spec = DataSpec(channels=1, height=2, width=2, levels=3)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 4, indexing="ij"), -1).reshape(-1, 1, 2, 2).astype(np.uint8)
    p = torch.from_numpy(np.exp(mix.log_prob(grid)))
    assert abs(float(p.sum()) - 1) < 1e-9
    train, _ = mix.sample(2000, np.random.Generator(np.random.PCG64(0)))
    x_train = spec.to_unit(torch.from_numpy(train))
    model = trained(spec, x_train, steps=100, T=1000, ae_lr=3e-3, lr=3e-3)
    x_all = spec.to_unit(torch.from_numpy(grid))
    with torch.no_grad():
        bound = torch.stack([model.bound_terms(x_all, strata=8, generator=torch.Generator().manual_seed(r)).total
                             for r in range(4)]).mean(0)
    expected = float((p * bound).sum())
    assert expected >= entropy, (expected, entropy)
    # and a sane number: an untrained prior costs about log(std(u_0) sqrt(2 pi e)) ~ 6.4 nats per latent dim here
    assert expected < spec.dims * math.log(3) + 8 * model.latent_dims, expected


def test_the_posterior_scale_fit_picks_the_smallest_bound_on_its_batch_with_common_draws():
    """fit_posterior_scale evaluates the bound at every grid c with the same draws and keeps the argmin; c = 1 is in
    the grid, so on that batch the fitted bound is never above the encoder's own q's."""
    from genbench_ldm.model import POSTERIOR_SCALE_GRID

    spec = DIGITS_SPEC
    model = trained(spec, contract_batch(spec, n=64, seed=1))
    x = contract_batch(spec, n=32, seed=3)
    assert 1.0 in POSTERIOR_SCALE_GRID and min(POSTERIOR_SCALE_GRID) < 1 < max(POSTERIOR_SCALE_GRID)
    with torch.no_grad():
        totals = model.fit_posterior_scale(x)
        assert set(totals) == set(POSTERIOR_SCALE_GRID)
        best = min(totals, key=totals.get)
        # 1.0 when the gain is within 2 standard errors, else the parabola's vertex next to the best grid point
        grid = sorted(POSTERIOR_SCALE_GRID)
        i = grid.index(best)
        c = model.posterior_scale
        assert c == 1.0 or grid[max(i - 1, 0)] <= c <= grid[min(i + 1, len(grid) - 1)], (c, best)
        seed = int(model.step)
        again = float(model.bound_terms(x, model.config.vlb_strata, torch.Generator().manual_seed(seed),
                                        posterior_scale=best).total.mean())
        assert again == pytest.approx(totals[best], rel=1e-9)  # common random numbers: the same draws per c
        assert totals[best] <= totals[1.0]
        # c enters the entropy term exactly: E_q[log q] at c is E_q[log q] at 1 minus d log c (closed form)
        t1 = model.bound_terms(x, 4, torch.Generator().manual_seed(0), posterior_scale=1.0)
        t4 = model.bound_terms(x, 4, torch.Generator().manual_seed(0), posterior_scale=4.0)
        torch.testing.assert_close(t4.neg_entropy, t1.neg_entropy - model.latent_dims * math.log(4.0), atol=1e-4,
                                   rtol=1e-6)
        # inside a bf16 training step's autocast the fit still evaluates the bound in fp32: the same numbers
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_bf16 = model.fit_posterior_scale(x)
        assert all(under_bf16[c] == pytest.approx(totals[c], rel=1e-9) for c in totals)
    # a fixed c in the config wins over the fitted one, and is recorded
    fixed = make(spec, posterior_scale=2.5)
    assert fixed.posterior_scale == 2.5


def test_z_draws_average_the_bound_and_shrink_its_per_image_spread():
    spec = DIGITS_SPEC
    model = trained(spec, contract_batch(spec, n=64, seed=1))
    x = contract_batch(spec, n=4, seed=2)
    with torch.no_grad():
        one = torch.stack([model.bound_terms(x, 2, torch.Generator().manual_seed(r), z_draws=1).total
                           for r in range(40)])
        eight = torch.stack([model.bound_terms(x, 2, torch.Generator().manual_seed(100 + r), z_draws=8).total
                             for r in range(40)])
    # same expectation (40 repeats: the two means agree within 4 standard errors of their difference) ...
    se = (one.var(0) / 40 + eight.var(0) / 40).sqrt()
    assert ((one.mean(0) - eight.mean(0)).abs() <= 4 * se + 1e-6).all(), (one.mean(0), eight.mean(0), se)
    # ... and about 1/8 of the variance (allow a wide band for 40 draws): at least 3x smaller
    assert (eight.var(0) * 3 < one.var(0)).all(), (one.var(0), eight.var(0))


@pytest.mark.parametrize("bad", [{"posterior_scale": 0.0}, {"posterior_scale": -1.0}, {"posterior_scale": float("nan")},
                                 {"bound_z_draws": 0}, {"test_bound_z_draws": 0}, {"posterior_fit_every": 0}])
def test_bound_options_are_checked_before_any_work(bad):
    from genbench.config import ConfigError

    with pytest.raises(ConfigError, match="ldm: "):
        make(DIGITS_SPEC, **bad)


def test_a_checkpoint_from_before_the_fit_loads_with_the_encoders_own_posterior():
    model = trained(DIGITS_SPEC, contract_batch(DIGITS_SPEC, n=64, seed=1))
    state = model.extra_state()
    state.pop("posterior_scale")
    model.fitted_posterior_scale = 7.0
    model.load_extra_state(state)
    assert model.posterior_scale == 1.0


@pytest.mark.parametrize("noisy", [True, False])
def test_the_fit_leaves_c_at_one_when_the_gain_is_inside_the_noise(noisy, monkeypatch):
    """Per-image bounds at c are made up: c = 4 is better on average by 1 nat; with a spread of 30 nats over 16
    images (standard error 7.5) that is noise and c stays 1, with a spread of 0.1 it is taken."""
    from genbench_ldm.bound import BoundTerms

    model = make(DIGITS_SPEC)
    spread = torch.linspace(-1, 1, 16, dtype=torch.float64) * (30.0 if noisy else 0.1)

    def fake(x, strata=None, generator=None, *, z_draws=None, posterior_scale=None):
        total = 100.0 + (spread * (1 if posterior_scale == 4.0 else 0)) - (1.0 if posterior_scale == 4.0 else 0.0)
        zero = torch.zeros(16, dtype=torch.float64)
        return BoundTerms(total, zero, zero, zero)

    monkeypatch.setattr(model, "bound_terms", fake)
    model.fit_posterior_scale(contract_batch(DIGITS_SPEC, n=16), grid=(0.5, 1.0, 4.0))
    assert model.posterior_scale == (1.0 if noisy else 4.0)


def test_the_fit_finds_the_vertex_between_grid_points_and_averages_over_fits(monkeypatch):
    """Bounds exactly quadratic in log c with the minimum at c = 3 (between the grid's 2.83 and 4): the parabola
    through the three smallest grid values finds 3; a second fit whose minimum is at 6 moves the average's
    vertex between the two, and the running average is kept in the checkpoint state."""
    from genbench_ldm.bound import BoundTerms
    from genbench_ldm.model import POSTERIOR_SCALE_GRID

    model = make(DIGITS_SPEC)
    centre = {"value": math.log(3.0)}

    def fake(x, strata=None, generator=None, *, z_draws=None, posterior_scale=None):
        total = 50.0 + 4.0 * (math.log(posterior_scale) - centre["value"]) ** 2
        per_image = torch.full((16,), total, dtype=torch.float64) + torch.linspace(-1e-3, 1e-3, 16, dtype=torch.float64)
        zero = torch.zeros(16, dtype=torch.float64)
        return BoundTerms(per_image, zero, zero, zero)

    monkeypatch.setattr(model, "bound_terms", fake)
    x = contract_batch(DIGITS_SPEC, n=16)
    model.fit_posterior_scale(x)
    assert model.posterior_scale == pytest.approx(3.0, rel=1e-6)
    assert 3.0 not in POSTERIOR_SCALE_GRID
    centre["value"] = math.log(6.0)
    model.fit_posterior_scale(x)
    assert 3.0 < model.posterior_scale < 6.0
    state = model.extra_state()
    again = make(DIGITS_SPEC)
    again.load_extra_state(state)
    assert again.posterior_fit_average == model.posterior_fit_average
    assert again.posterior_scale == model.posterior_scale
