"""The diffusers adapter's own maths: network evaluations per scheduler counted against U-Net calls, the
training loss against an independent Algorithm 1, determinism under the sampling generator, the EMA, the
canvas (padding) and the one-line errors of a bad config."""
from __future__ import annotations

import copy
import math

import pytest
import torch

pytest.importorskip("diffusers")

from genbench import DataSpec  # noqa: E402
from genbench.config import ConfigError, resolve_config  # noqa: E402
from genbench.testing import contract_batch  # noqa: E402
from genbench_diffusers import DiffusersModel  # noqa: E402
from genbench_diffusers.network import canvas  # noqa: E402
from genbench_diffusers.schedulers import ALIASES  # noqa: E402

DIGITS = DataSpec(1, 8, 8, 17)

#: the closed form of each scheduler's U-Net calls for `steps` steps, from the algorithms (schedulers.py):
#: one per step; Heun and KDPM2 two per step but the last; PNDM's Runge-Kutta warm-up adds 3 x 3 calls
EXPECTED_NFE = {name: (lambda s: s) for name in ALIASES}
EXPECTED_NFE.update({"heun": lambda s: 2 * s - 1, "kdpm2": lambda s: 2 * s - 1, "pndm": lambda s: s + 9})
STOCHASTIC = ["ddpm", "euler-ancestral", "sde-dpm-solver++"]


def make(spec: DataSpec = DIGITS, **overrides) -> DiffusersModel:
    torch.manual_seed(0)
    return DiffusersModel(resolve_config(DiffusersModel, "tiny", spec, overrides), spec)


def draw(model: DiffusersModel, seed: int, steps: int | None = 4, n: int = 3) -> torch.Tensor:
    with torch.inference_mode():
        return model.sample(n, steps=steps, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scheduler", list(ALIASES))
def test_nfe_counts_the_unet_calls_of_every_scheduler(scheduler):
    model = make(scheduler=scheduler)
    calls = []
    model.sampling_net.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    for steps in (4, 6):
        calls.clear()
        x = draw(model, 0, steps=steps)
        assert len(calls) == model.nfe(steps) == EXPECTED_NFE[scheduler](steps), (scheduler, steps, len(calls))
        assert tuple(x.shape) == (3, *DIGITS.shape) and 0 <= x.min() and x.max() <= 1
    assert model.sampler_name(6) == f"diffusers-{ALIASES[scheduler].label}-6"


def test_default_setting_is_T_steps_and_steps_above_T_are_T():
    model = make()
    T = model.config.num_train_timesteps
    assert model.nfe(None) == model.nfe(10 * T) == T and model.sampler_name(None) == f"diffusers-DDPM-{T}"
    assert make(scheduler="ddim").sampler_name(50) == "diffusers-DDIM-20"  # tiny: T = 20
    assert make(scheduler="ddim", eta=1.0).sampler_name(5) == "diffusers-DDIM(eta=1)-5"
    assert make(scheduler="EulerDiscreteScheduler").sampler_name(5) == "diffusers-EulerDiscrete-5"


@pytest.mark.parametrize("scheduler", STOCHASTIC)
def test_stochastic_samplers_depend_on_the_generator_alone(scheduler):
    """Same generator seed -> same images whatever the global RNG; other seed -> other images; the global RNG
    is neither read nor advanced."""
    model = make(scheduler=scheduler)
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = draw(model, 7)
    assert torch.equal(torch.get_rng_state(), state), "sampling advanced the global RNG"
    torch.manual_seed(2)
    assert torch.equal(a, draw(model, 7))
    assert not torch.equal(a, draw(model, 8))


def test_step_noise_comes_from_the_generator():
    """The generator is consumed exactly as the algorithms say: x_T, the seed of the forked global RNG, then one
    N(0, I) draw per DDPM step with t > 0 (Ho et al. Algorithm 2 adds no noise at t = 0); DDIM with eta = 0
    draws nothing after x_T (Song et al. eq. 12)."""
    shape = (3, 1, 8, 8)
    for name, noisy_steps in (("ddpm", 3), ("ddim", 0)):
        g = torch.Generator().manual_seed(3)
        with torch.inference_mode():
            make(scheduler=name).sample(3, steps=4, generator=g)
        ref = torch.Generator().manual_seed(3)
        torch.randn(shape, generator=ref)
        torch.randint(0, 2**62, (1,), generator=ref)
        for _ in range(noisy_steps):
            torch.randn(shape, generator=ref)
        assert torch.equal(g.get_state(), ref.get_state()), name


def test_training_loss_is_algorithm_1():
    """The returned loss is ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)||^2 with abar_t from the
    cosine schedule's closed form (Nichol & Dhariwal 2021 eq. 17, betas clipped at 0.999), x0 in [-1, 1]."""
    model = make(ema_decay=0.0)
    T = model.T
    x = contract_batch(DIGITS, n=8, seed=3)
    unet = copy.deepcopy(model.unet)
    torch.manual_seed(11)
    t = torch.randint(0, T, (8,))
    eps = torch.randn(8, 1, 8, 8)
    f = lambda s: math.cos((s / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)[t].float().view(-1, 1, 1, 1)
    x0 = x * 2 - 1
    with torch.no_grad():
        expected = torch.mean((eps - unet(abar.sqrt() * x0 + (1 - abar).sqrt() * eps, t).sample) ** 2)
    torch.manual_seed(11)
    loss = model.train_step(x)["loss"]
    assert loss == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_training_lowers_the_loss_and_the_ema_follows():
    model = make(lr=3e-3, ema_decay=0.5, ema_warmup=False)
    x = contract_batch(DIGITS, n=32, seed=1)
    before = [p.clone() for p in model.averaged["ema"].parameters()]
    model.train_step(x)
    for pe, p0, p in zip(model.averaged["ema"].parameters(), before, model.unet.parameters(), strict=True):
        assert torch.allclose(pe, 0.5 * p0 + 0.5 * p.detach(), atol=1e-7)
    torch.manual_seed(0)
    losses = []
    for _ in range(40):
        losses.append(model.train_step(x)["loss"])
        model.step += 1
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:5]) / 5, losses


def test_sides_the_unet_cannot_halve_are_padded_and_cropped():
    assert canvas(8, 8, 2) == (8, 8) and canvas(28, 28, 3) == (28, 28) and canvas(7, 9, 3) == (8, 12)
    spec = DataSpec(3, 7, 9, 256)
    model = make(spec, block_out_channels=[8, 8, 16])
    assert tuple(model.unet.config.sample_size) == (8, 12)
    x = contract_batch(spec, n=4)
    assert math.isfinite(model.train_step(x)["loss"])
    assert tuple(draw(model, 0, steps=2).shape) == (3, 3, 7, 9)


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"scheduler": "dpm-solver+"}, "did you mean 'dpm-solver++'"),
    ({"scheduler": "NoSuchScheduler"}, "unknown diffusers scheduler"),
    ({"scheduler": "pndm", "sample_steps": "2"}, "cannot sample with 2 steps"),
    ({"norm_num_groups": "3"}, "norm_num_groups=3 must divide"),
    ({"attention_levels": "[2]"}, "attention_levels [2] must lie in 0..1"),
    ({"prediction_type": "noise"}, "prediction_type must be one of"),
    ({"pretrained": "/no/such/folder"}, "is not a folder"),
])
def test_bad_configs_are_one_line_errors(overrides, needle):
    with pytest.raises(ConfigError) as err:
        resolve_config(DiffusersModel, "tiny", DIGITS, overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)
