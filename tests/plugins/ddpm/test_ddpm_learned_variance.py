"""DDPM with learned variances (Nichol & Dhariwal 2021) through the genbench interface: the options and their
errors, the 2C-channel network, training with L_hybrid and importance-sampled t (checkpointed), the bound and
the sampler using the learned Sigma, and the shared contract."""
from __future__ import annotations

import io

import pytest
import torch

from genbench.config import ConfigError, resolve_config
from genbench.diffusion import discretised_gaussian_nll, strided_ancestral_sample, vlb_stratified
from genbench.diffusion.learned_variance import interpolated_log_variance
from genbench.nn.seeding import content_generator
from genbench.testing import check_model_contract, contract_batch
from genbench_ddpm import DDPM

LEARNED = {"learn_sigma": True, "loss": "hybrid", "t_sampling": "importance"}


def make(spec, **overrides) -> DDPM:
    torch.manual_seed(0)
    return DDPM(resolve_config(DDPM, "tiny", spec, overrides), spec)


@pytest.mark.parametrize("overrides,match", [
    ({"learn_sigma": True}, "loss=hybrid"),
    ({"loss": "hybrid"}, "learn_sigma=true"),
    ({"t_sampling": "importance"}, "loss=hybrid or loss=vlb"),
    ({"loss": "l1"}, "loss must be one of"),
    ({"variance": "learned"}, "variance must be"),
])
def test_options_that_cannot_work_fail_while_the_config_is_resolved(digits_spec, overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(DDPM, "tiny", digits_spec, overrides)


def test_learned_variance_network_trains_and_scores(digits_spec):
    model = make(digits_spec, **LEARNED)
    x = contract_batch(digits_spec, n=16)
    assert model.net(x * 2 - 1, torch.zeros(16, dtype=torch.long)).shape[1] == 2 * digits_spec.channels
    assert model.eps_fn(x, torch.zeros(16, dtype=torch.long)).shape == x.shape
    model.train(True)
    for _ in range(3):
        out = model.train_step(x)
        model.step += 1
        assert torch.isfinite(torch.tensor(out["loss"]))
    assert int(model.t_sampler.counts.sum()) == 3 * 16  # every image's L_t went into the history
    model.train(False)
    with torch.no_grad():
        # the bound with the learned Sigma, recomputed from the network's two halves
        x0 = x * 2 - 1

        def learned(xt, t):
            out = model.sampling_net(xt, t)
            return out[:, :1], interpolated_log_variance(model.schedule, t, out[:, 1:])

        expected = vlb_stratified(learned, model.schedule, x0, model.config.vlb_strata,
                                  discretised_gaussian_nll(digits_spec.levels, float(model.schedule.betas[0])),
                                  generator=content_generator(x), clip_x0=1.0)
        torch.testing.assert_close(model.nll(x).double(), expected.double(), rtol=1e-5, atol=1e-3)
        est = model.nll_estimates(x)[0]
        assert est.params["variance"] == "learned" and est.params["clip_x0"] == 1.0
        a = model.sample(4, generator=torch.Generator().manual_seed(1))
        b = model.sample(4, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b) and a.shape == (4, *digits_spec.shape)


def test_importance_history_survives_a_checkpoint(digits_spec):
    model = make(digits_spec, **LEARNED)
    model.train(True)
    model.train_step(contract_batch(digits_spec, n=16))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    other = make(digits_spec, **LEARNED)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(other.t_sampler.values, model.t_sampler.values)
    assert torch.equal(other.t_sampler.counts, model.t_sampler.counts)


class LearnedDDPM(DDPM):
    """The ddpm plugin with learned variances, L_hybrid and importance-sampled t in its tiny preset."""

    presets = {"tiny": {**DDPM.presets["tiny"], **LEARNED}}


def test_contract_with_learned_variances():
    check_model_contract(LearnedDDPM)


def test_sigma_min_fits_the_first_step_to_the_levels(digits_spec):
    model = make(digits_spec, schedule="cosine", sigma_min="auto", T=1000)
    assert abs(float((1 - model.schedule.alpha_bar[0]).sqrt()) - 1 / (3 * (digits_spec.levels - 1))) < 1e-12
    # with T = 20 the cosine schedule's own first step is already coarser (0.089): nothing changes
    assert torch.equal(make(digits_spec, schedule="cosine", sigma_min="auto").schedule.betas,
                       make(digits_spec, schedule="cosine").schedule.betas)
    assert make(digits_spec, schedule="cosine", sigma_min="0.05").sigma_min == 0.05
    with pytest.raises(ConfigError, match="schedule=cosine"):
        resolve_config(DDPM, "tiny", digits_spec, {"sigma_min": "auto"})  # tiny uses the linear schedule
    with pytest.raises(ConfigError, match="sigma_min must be"):
        resolve_config(DDPM, "tiny", digits_spec, {"schedule": "cosine", "sigma_min": "abc"})


def test_strided_ancestral_sampler_uses_the_networks_v_on_the_respaced_schedule(digits_spec):
    """strided_sampler=ancestral: sample(steps < T) is Algorithm 2 on the respaced schedule with eq. 15's v
    (Nichol & Dhariwal section 4), named "ancestral-<steps>"; the DDIM default is unchanged; a typo is one line."""
    model = make(digits_spec, strided_sampler="ancestral", **LEARNED)
    model.train_step(contract_batch(digits_spec, n=16))
    model.train(False)
    assert model.sampler_name(5) == "ancestral-5" and model.nfe(5) == 5
    assert model.sampler_name(None) == "ancestral-20"
    with torch.inference_mode():
        got = model.sample(3, steps=5, generator=torch.Generator().manual_seed(2))

        def eps_v(xt, t):
            out = model.sampling_net(xt, t)
            return out[:, :1], out[:, 1:]

        x, nfe = strided_ancestral_sample(eps_v, model.schedule, (3, *digits_spec.shape), 5, learned_variance=True,
                                          generator=torch.Generator().manual_seed(2), clip_x0=1.0)
    torch.testing.assert_close(got, ((x + 1) / 2).clamp(0, 1))
    assert nfe == 5
    assert make(digits_spec, **LEARNED).sampler_name(5) == "DDIM-5"
    with pytest.raises(ConfigError, match="strided_sampler must be one of ddim, ancestral"):
        resolve_config(DDPM, "tiny", digits_spec, {"strided_sampler": "euler"})
