"""The GAN model: training step, EMA, truncation, divergence handling (the shared contract runs in
tests/test_contract.py, the EMA arithmetic in tests/nn/test_ema.py)."""
from __future__ import annotations

import math

import pytest
import torch

import genbench_gan
from genbench.config import LARGE_IMAGE_BUDGETS, resolve_config
from genbench.model import DataSpec
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.testing import DIGITS_SPEC, contract_batch
from genbench_gan import GAN
from genbench_gan.batchnorm import recalibrate_batchnorm
from genbench_gan.networks import Discriminator, Generator


def tiny(spec=DIGITS_SPEC, **overrides) -> GAN:
    torch.manual_seed(0)
    return GAN(resolve_config(GAN, "tiny", spec, overrides), spec)


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> list[str]:
    return [k for k, v in net.state_dict().items() if k in before and not torch.equal(before[k], v)]


@pytest.mark.parametrize("loss", ["hinge", "ns"])
def test_one_step_changes_both_networks_and_reports(loss):
    model = tiny(loss=loss)
    g0, d0, e0 = snapshot(model.generator), snapshot(model.discriminator), snapshot(model.g_ema)
    out = model.train_step(contract_batch(DIGITS_SPEC))
    g_changed, d_changed = changed(g0, model.generator), changed(d0, model.discriminator)
    assert any("weight" in k for k in g_changed), "generator weights did not move"
    assert any("weight" in k for k in d_changed), "discriminator weights did not move"
    assert changed(e0, model.g_ema), "EMA generator did not move"
    assert {"loss", "loss_d", "loss_g", "d_acc_real", "d_acc_fake"} <= set(out)
    assert all(math.isfinite(v) for v in out.values())
    assert 0.0 <= out["d_acc_real"] <= 1.0 and 0.0 <= out["d_acc_fake"] <= 1.0


def test_n_critic_takes_that_many_discriminator_steps():
    model = tiny(n_critic=3)
    model.train_step(contract_batch(DIGITS_SPEC))
    adam_d = model.optimizers["discriminator"].state
    adam_g = model.optimizers["generator"].state
    assert {int(s["step"]) for s in adam_d.values()} == {3}
    assert {int(s["step"]) for s in adam_g.values()} == {1}


def test_accuracy_is_computed_from_logit_signs(monkeypatch):
    model = tiny()
    # a D that says "real" (logit +1) for every real and fake image: accuracy 1 on real, 0 on fake
    monkeypatch.setattr(Discriminator, "forward", lambda self, x: (x.flatten(1)[:, 0] * 0 + 1.0) + 0 * self.head.bias.sum())
    out = model.train_step(contract_batch(DIGITS_SPEC))
    assert out["d_acc_real"] == 1.0 and out["d_acc_fake"] == 0.0
    # hinge with D == 1 everywhere: relu(1 - 1) + relu(1 + 1) = 2; G: -1
    assert out["loss_d"] == pytest.approx(2.0) and out["loss_g"] == pytest.approx(-1.0)


def test_ema_generator_is_the_averaged_home_with_the_warmup_decay():
    model = tiny(ema_decay=0.999)
    assert model.averaged == {"g_ema": model.g_ema} and model.g_ema not in model.networks.values()
    before = snapshot(model.g_ema)
    model.train_step(contract_batch(DIGITS_SPEC))
    # first update: decay min(0.999, 1/10) = 0.1 (TensorFlow's warm-up)
    for k, p in model.generator.named_parameters():
        torch.testing.assert_close(model.g_ema.state_dict()[k], 0.1 * before[k] + 0.9 * p.detach())
    assert model.ema_updates == 1
    assert model.count_parameters() == sum(p.numel() for n in model.networks.values() for p in n.parameters())
    model.train(True)
    assert model.generator.training and not model.g_ema.training


def test_batchnorm_recalibration_uses_the_ema_weights_statistics():
    torch.manual_seed(0)
    g = Generator(4, 1, 8, 8, width_mult=4)
    z = [torch.randn(64, 4), torch.randn(64, 4)]
    recalibrate_batchnorm(g, z)
    assert not g.training
    bn = g.project_norm[0]
    h = g.project(torch.cat(z)).view(128, *g.base)  # first BatchNorm sees the projection of z
    torch.testing.assert_close(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-4)
    assert bn.momentum == 0.1  # restored


def test_truncation_keeps_latents_inside_and_is_deterministic():
    model = tiny(truncation=0.5)
    z1 = model.sample_latents(200, torch.Generator().manual_seed(3))
    z2 = model.sample_latents(200, torch.Generator().manual_seed(3))
    assert z1.abs().max() <= 0.5 and torch.equal(z1, z2)
    assert tiny().sample_latents(200, torch.Generator().manual_seed(3)).abs().max() > 2.0  # off by default
    assert model.sampler_name(None) == "G-EMA trunc=0.5" and tiny().sampler_name(None) == "G-EMA"


def test_sample_is_one_generator_pass_in_unit_range():
    model = tiny()
    calls = []
    model.g_ema.register_forward_hook(lambda *a: calls.append(1))
    model.sampling_network()  # BatchNorm re-estimation happens once, before sampling
    calls.clear()
    model.train(False)
    with torch.inference_mode():
        x = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1 and model.nfe(None) == 1
    assert x.shape == (6, *DIGITS_SPEC.shape) and 0 <= x.min() and x.max() <= 1


def test_non_finite_loss_is_returned_and_weights_stay(monkeypatch):
    model = tiny()
    x = contract_batch(DIGITS_SPEC)
    x[0, 0, 0, 0] = float("nan")  # a NaN reaches D -> L_D is NaN
    params = {k: p.detach().clone() for net in model.networks.values() for k, p in net.named_parameters()}
    out = model.train_step(x)
    assert not math.isfinite(out["loss"]) and not math.isfinite(out["loss_d"])
    for net in model.networks.values():  # no optimiser step was taken on the NaN loss
        for k, p in net.named_parameters():
            assert torch.equal(p, params[k]), f"{k} changed after a non-finite loss"


def test_divergence_is_recorded_as_a_failed_cell(monkeypatch, tmp_path):
    original = Discriminator.forward
    monkeypatch.setattr(Discriminator, "forward", lambda self, x: original(self, x) * float("inf"))
    registry = build_registry(extra=[genbench_gan], autoload=False)
    runner = Runner(out_dir=tmp_path, registry=registry, device="cpu", progress=False)
    result = runner.run_cell(CellSpec("gan", "digits", 0, "tiny"))
    assert result.state == "failed"
    assert "diverged" in result.error and "gan" in result.error
    assert result.rows == []


def test_no_likelihood_and_presets():
    assert GAN.likelihood is None
    assert {"tiny", "quick", "standard"} <= set(GAN.presets)
    with pytest.raises(NotImplementedError):
        tiny().nll(contract_batch(DIGITS_SPEC))


def test_standard_on_large_images_is_ended_by_the_shared_budget_not_a_step_cap():
    """At 28x28 the digits' 10000-step cap stopped training at 808 of the 1200 budgeted seconds; there the
    budget alone ends it, with FID along the way.  Digits keep the step cap."""
    fashion = resolve_config(GAN, "standard", DataSpec(1, 28, 28, 256))
    assert fashion.max_steps is None and fashion.max_minutes == LARGE_IMAGE_BUDGETS["standard"]["max_minutes"]
    assert fashion.sample_every == 2500
    digits = resolve_config(GAN, "standard", DataSpec(1, 8, 8, 17))
    assert digits.max_steps == 10000 and digits.max_minutes is None and digits.sample_every is None
