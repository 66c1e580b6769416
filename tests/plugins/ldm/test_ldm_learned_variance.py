"""The latent DDPM's estimator options: learned variances with L_hybrid and importance-sampled t (Nichol & Dhariwal
2021) through the ldm plugin, and the bound's last-step clamp of the predicted u_0 (only there)."""
from __future__ import annotations

import pytest
import torch

from genbench.config import ConfigError, resolve_config
from genbench.diffusion.schedule import Schedule, clamped_eps
from genbench.testing import DIGITS_SPEC, check_model_contract, contract_batch
from genbench_ldm import LatentDiffusion

LEARNED = {"learn_sigma": True, "loss": "hybrid", "t_sampling": "importance"}


def trained(steps: int = 6, **overrides) -> LatentDiffusion:
    torch.manual_seed(0)
    model = LatentDiffusion(resolve_config(LatentDiffusion, "tiny", DIGITS_SPEC,
                                           {"max_steps": steps, "ae_fraction": 0.5, **overrides}), DIGITS_SPEC)
    x = contract_batch(DIGITS_SPEC, n=32, seed=1)
    model.train(True)
    for _ in range(steps):
        model.train_step(x[torch.randint(0, 32, (16,))])
        model.step += 1
    model.train(False)
    return model


def test_bad_combinations_fail_while_the_config_is_resolved():
    with pytest.raises(ConfigError, match="ldm: .*loss=hybrid"):
        resolve_config(LatentDiffusion, "tiny", DIGITS_SPEC, {"learn_sigma": True})


def test_learned_variance_trains_in_stage_two_and_scores():
    model = trained(**LEARNED)
    assert model.stage == 2 and int(model.t_sampler.counts.sum()) == 3 * 16
    u = torch.randn(4, *model.latent_shape)
    t = torch.full((4,), 3, dtype=torch.long)
    eps, log_var = model.eps_var_fn(u, t)
    assert eps.shape == u.shape and log_var.shape == u.shape and torch.isfinite(log_var).all()
    x = contract_batch(DIGITS_SPEC, n=8)
    with torch.no_grad():
        est = model.nll_estimates(x)[0]
    assert torch.isfinite(est.nats).all() and est.params["variance"] == "learned"
    assert model.extra_state()["t_sampler"]["counts"].sum() == 3 * 16


def test_bound_clamps_the_predicted_latent_only_at_the_last_step():
    model = trained()
    assert model.latent_bound is not None and model.config.clip_latents
    s: Schedule = model.schedule
    u = 50.0 * torch.randn(6, *model.latent_shape)  # far outside the bound: every prediction of u_0 is clamped
    t = torch.tensor([0, 1, s.T // 2, s.T - 2, s.T - 1, s.T - 1])
    with torch.no_grad():
        plain, bound = model.eps_fn(u, t), model.bound_eps_fn(u, t)
        clamped = clamped_eps(s, u, t, plain, model.latent_bound)
    torch.testing.assert_close(bound[:4], plain[:4], rtol=0, atol=0)
    torch.testing.assert_close(bound[4:], clamped[4:])
    assert not torch.allclose(bound[4:], plain[4:])
    model.config.clip_latents = False
    with torch.no_grad():
        torch.testing.assert_close(model.bound_eps_fn(u, t), plain, rtol=0, atol=0)


class LearnedLDM(LatentDiffusion):
    """The ldm plugin with learned variances, L_hybrid and importance-sampled t in its tiny preset."""

    presets = {"tiny": {**LatentDiffusion.presets["tiny"], **LEARNED}}


def test_contract_with_learned_variances():
    check_model_contract(LearnedLDM)
