"""The VDM model through the genbench interface: the learned end points, the schedule under training,
samplers, the bound, bad input (the shared contract runs in tests/test_contract.py; the maths in the
other files here)."""
from __future__ import annotations

import copy

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.diffusion.continuous import continuous_bound
from genbench.testing import contract_batch
from genbench_vdm import VDM
from genbench_vdm.model import default_gamma_min
from genbench_vdm.network import fourier_exponents

DIGITS = DataSpec(1, 8, 8, 17)


def make(spec: DataSpec = DIGITS, **overrides) -> VDM:
    torch.manual_seed(0)
    return VDM(resolve_config(VDM, "tiny", spec, overrides), spec)


def train(model: VDM, x: torch.Tensor, steps: int) -> list[dict[str, float]]:
    model.train(True)
    out = []
    for _ in range(steps):
        out.append(model.train_step(x))
        model.step += 1
    return out


def decoder_plus_diffusion(net, x: torch.Tensor, levels: int) -> float:
    terms = continuous_bound(net.eps, net.schedule, x * 2 - 1, levels, 64, generator=torch.Generator().manual_seed(0))
    return float((terms["recon"] + terms["diffusion"]).mean())


def test_gamma_min_moves_toward_a_coarse_discretisation():
    """K = 2 data with gamma_min started at the paper's K = 256 value (-13.3, noise far below the level
    spacing): 40 steps raise gamma_min by more than one unit, and with the trained noise model the decoder +
    diffusion terms at the learned gamma_min are below those at the initial one (same draws)."""
    spec = DataSpec(1, 4, 4, 2)
    model = make(spec, gamma_min=-13.3, gamma_max=6.0, lr=0.05, ema_decay=0.0, batch_size=64)
    x = contract_batch(spec, n=64, seed=1)
    train(model, x, 40)
    g0 = float(model.net.schedule.gamma_0.detach())
    assert g0 > -13.3 + 1.0, g0
    at_start = copy.deepcopy(model.net)
    with torch.no_grad():
        at_start.schedule.gamma_0.fill_(-13.3)
    assert decoder_plus_diffusion(model.net, x, 2) < decoder_plus_diffusion(at_start, x, 2)


def test_schedule_stays_monotone_and_its_shape_trains():
    model = make(lr=1e-2, ema_decay=0.0)
    before = [p.detach().clone() for p in model.net.schedule.shape_parameters()]
    losses = train(model, contract_batch(DIGITS, n=16), 10)
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in losses)
    gamma, dgamma = model.net.schedule(torch.linspace(0, 1, 1001))
    assert (gamma.diff() > 0).all() and (dgamma > 0).all()
    after = model.net.schedule.shape_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_fixed_schedule_option_does_not_move():
    model = make(learn_schedule=False, lr=1e-2)
    before = copy.deepcopy(model.net.schedule.state_dict())
    train(model, contract_batch(DIGITS), 3)
    for k, v in model.net.schedule.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("steps,label", [(None, "ancestral-20"), (5, "ancestral-5"), (1, "ancestral-1")])
def test_ancestral_sampler_is_deterministic_and_named(steps, label):
    model = make()
    train(model, contract_batch(DIGITS), 1)
    model.train(False)
    with torch.inference_mode():
        a = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(7))
        b = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(7))
        c = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(8))
    assert model.sampler_name(steps) == label and model.nfe(steps) == (steps or 20)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 1, 8, 8)
    assert torch.equal(DIGITS.to_unit(DIGITS.to_levels(a)), a)  # the decoder's mode: exactly on the levels


def test_bound_is_content_seeded_and_its_terms_add_up():
    model = make()
    x = contract_batch(DIGITS)
    model.train(False)
    with torch.no_grad():
        a, b = model.nll(x), model.nll(x)
        est = model.nll_estimates(x)[0]
        terms = continuous_bound(model.sampling_net.eps, model.sampling_net.schedule, x * 2 - 1, 17, 4,
                                 generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and (a > 0).all()
    assert est.kind == "ELBO" and est.params["t_draws"] == 4
    assert (terms["prior"] >= 0).all() and (terms["recon"] >= 0).all() and (terms["diffusion"] >= 0).all()
    with torch.no_grad():  # the same estimator of the same batch in two halves draws differently
        assert not torch.equal(model.nll(x[:4]), a[:4])


def test_data_dependent_start_and_fourier_features():
    assert default_gamma_min(256) == pytest.approx(-13.28, abs=0.01)  # the paper's -13.3
    assert fourier_exponents(256) == (7, 8) and fourier_exponents(17) == (3, 4)
    assert float(make().net.schedule.gamma_0.detach()) == pytest.approx(default_gamma_min(17))


@pytest.mark.parametrize("spec,overrides,match", [
    (DataSpec(1, 2, 2, 4096), {}, "quantise the data to fewer levels"),
    (DIGITS, {"gamma_min": 6.0, "gamma_max": 5.0}, "gamma_max > gamma_min"),
    (DIGITS, {"bound_draws": 0}, "bound_draws >= 1"),
])
def test_bad_input_is_refused_before_work(spec, overrides, match):
    with pytest.raises(ValueError, match=match):
        make(spec, **overrides)
