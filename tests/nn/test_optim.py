"""genbench.nn.optim: the shared optimiser step -- the plain path unchanged, loss scaling (fp16) on the CPU's
GradScaler: skipped overflow steps, the scale's backoff, updates equal to the unscaled path; Adam's foreach."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genbench.diffusion.training import optimiser_step as diffusion_optimiser_step
from genbench.nn.optim import LossScaling, active_loss_scaling, loss_scaling, optimiser_step


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 1, 3, padding=1))


def _loss(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (net(x) - x).pow(2).mean()


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()] or [torch.zeros(0)])


def _old_step(net, opt, loss, lr, grad_clip):
    """The optimiser step every plugin had before genbench.nn.optim (genbench.diffusion.training, 0.x)."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip) if grad_clip > 0 else torch.tensor(0.0)
    opt.step()
    return loss.detach(), gnorm.detach()


X = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("grad_clip", [0.0, 0.05])
def test_the_plain_step_is_bit_identical_to_the_old_code_path(grad_clip):
    old, new, via_diffusion = _net(), _net(), _net()
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in (old, new, via_diffusion)]
    for i in range(5):
        lo, go = _old_step(old, opts[0], _loss(old, X), 1e-2 / (i + 1), grad_clip)
        ln, gn = optimiser_step(opts[1], _loss(new, X), new.parameters(), grad_clip=grad_clip, lr=1e-2 / (i + 1))
        ld, gd = diffusion_optimiser_step(via_diffusion, opts[2], _loss(via_diffusion, X), 1e-2 / (i + 1), grad_clip)
        assert torch.equal(lo, ln) and torch.equal(go, gn) and torch.equal(lo, ld) and torch.equal(go, gd)
    assert torch.equal(_flat(old), _flat(new)) and torch.equal(_flat(old), _flat(via_diffusion))
    assert active_loss_scaling() is None  # outside a loss_scaling block: the plain path


def test_a_scaled_step_updates_like_the_unscaled_one():
    plain, scaled = _net(), _net()
    opt_p, opt_s = (torch.optim.Adam(n.parameters(), lr=1e-2) for n in (plain, scaled))
    scaling = LossScaling("cpu", {"opt": opt_s}, init_scale=2.0 ** 12)
    for _ in range(3):
        _, g_p = optimiser_step(opt_p, _loss(plain, X), grad_clip=0.05)
        with loss_scaling(scaling):
            assert active_loss_scaling() is scaling
            result = optimiser_step(opt_s, _loss(scaled, X), grad_clip=0.05)
        assert not result.skipped
        torch.testing.assert_close(result.grad_norm, g_p, rtol=1e-5, atol=1e-7)  # clipped on unscaled gradients
    torch.testing.assert_close(_flat(scaled), _flat(plain), rtol=1e-5, atol=1e-6)
    assert scaling.skipped == 0 and scaling.steps == 3 and scaling.scale() == 2.0 ** 12
    assert scaling.stats() == {"loss_scale": 2.0 ** 12, "skipped_steps": 0.0}


def test_an_overflowing_step_is_skipped_and_the_scale_halves():
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    scaling = LossScaling("cpu", {"opt": opt}, init_scale=2.0 ** 10)
    optimiser_step(opt, _loss(net, X), scaling=scaling)  # one good step: Adam has state
    before, state = _flat(net), copy.deepcopy(opt.state_dict()["state"])
    with loss_scaling(scaling):
        result = optimiser_step(opt, _loss(net, X) * float("inf"), grad_clip=1.0)
    assert result.skipped and float(result.grad_norm) == 0.0  # reported, not an inf the runner would call divergence
    assert torch.equal(_flat(net), before)  # no update
    assert opt.state_dict()["state"][0]["step"] == state[0]["step"]  # Adam's step count unchanged too
    assert scaling.scale() == 2.0 ** 9 and scaling.skipped == 1 and scaling.steps == 2
    with loss_scaling(scaling):
        assert not optimiser_step(opt, _loss(net, X)).skipped  # and training goes on
    assert not torch.equal(_flat(net), before)


def test_each_optimiser_has_its_own_scaler_and_the_scales_survive_a_checkpoint():
    g, d = _net(0), _net(1)
    opts = {"generator": torch.optim.Adam(g.parameters()), "discriminator": torch.optim.Adam(d.parameters())}
    scaling = LossScaling("cpu", opts, init_scale=2.0 ** 8)
    with loss_scaling(scaling):
        optimiser_step(opts["discriminator"], _loss(d, X) * float("inf"))  # D overflows: only its scale halves
        optimiser_step(opts["generator"], _loss(g, X))
    assert scaling.scalers["discriminator"].get_scale() == 2.0 ** 7
    assert scaling.scalers["generator"].get_scale() == 2.0 ** 8
    assert scaling.scale() == 2.0 ** 7
    restored = LossScaling("cpu", opts, init_scale=2.0 ** 8)
    restored.load_state_dict(scaling.state_dict())
    assert restored.scalers["discriminator"].get_scale() == 2.0 ** 7 and restored.skipped == 1 and restored.steps == 2


def test_gan_steps_both_optimisers_through_the_loss_scaling():
    from genbench.config import resolve_config
    from genbench.plugins import build_registry
    from genbench.testing import DIGITS_SPEC

    cls = build_registry(autoload=True).models.get("gan")
    model = cls(resolve_config(cls, "tiny", DIGITS_SPEC, {"n_critic": 2}), DIGITS_SPEC)  # two D steps in a row
    scaling = LossScaling("cpu", model.optimizers)
    x = torch.rand(8, *DIGITS_SPEC.shape, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.float16), loss_scaling(scaling):
        model.train_step(x)
    assert set(scaling.scalers) == {"generator", "discriminator"}
    assert scaling.steps == model.config.n_critic + 1


@pytest.mark.parametrize("cls,kwargs", [(torch.optim.Adam, {}), (torch.optim.AdamW, {"weight_decay": 0.01})])
def test_adam_foreach_is_bit_identical_to_the_per_tensor_loop_on_cpu(cls, kwargs):
    loop, fused = _net(), _net()
    opt_l = cls(loop.parameters(), lr=1e-2, foreach=False, **kwargs)
    opt_f = cls(fused.parameters(), lr=1e-2, foreach=True, **kwargs)
    for _ in range(10):
        optimiser_step(opt_l, _loss(loop, X), grad_clip=0.05)
        optimiser_step(opt_f, _loss(fused, X), grad_clip=0.05)
    assert torch.equal(_flat(loop), _flat(fused))


# ldm joins this list once its autoencoder step uses optimiser_step too (lead's diff, issue 19)
@pytest.mark.parametrize("name", ["ddpm", "vdm", "vae", "gan", "pixelcnn", "diffusers", "ldm"])
def test_every_trained_family_steps_through_the_loss_scaling(name):
    """One training step of each family under CPU fp16 autocast and loss scaling: every optimiser step goes
    through the scaler (so an fp16 run on CUDA scales the loss of every family), and the weights move."""
    from genbench.config import resolve_config
    from genbench.plugins import build_registry
    from genbench.testing import DIGITS_SPEC

    cls = build_registry(autoload=True).models.get(name)
    torch.manual_seed(0)
    model = cls(resolve_config(cls, "tiny", DIGITS_SPEC, {}), DIGITS_SPEC)
    model.train(True)
    before = {k: _flat(net) for k, net in model.networks.items()}
    scaling = LossScaling("cpu", model.optimizers)
    x = torch.rand(8, *DIGITS_SPEC.shape, generator=torch.Generator().manual_seed(0))
    x = (x * (DIGITS_SPEC.levels - 1)).round() / (DIGITS_SPEC.levels - 1)
    with torch.autocast("cpu", dtype=torch.float16), loss_scaling(scaling):
        losses = model.train_step(x)
    assert scaling.steps >= 1 and set(scaling.scalers) <= set(model.optimizers)
    assert all(torch.isfinite(torch.tensor(float(v))) for v in losses.values()), losses
    assert any(not torch.equal(before[k], _flat(net)) for k, net in model.networks.items()) or scaling.skipped
