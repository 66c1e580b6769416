"""The DDPM model through the genbench interface: training, the EMA, samplers, the bound, checkpoints, presets
(the shared contract runs in tests/test_contract.py; the diffusion maths in tests/diffusion)."""
from __future__ import annotations

import io

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, contract_batch
from genbench_ddpm import DDPM


def make(spec: DataSpec, **overrides) -> DDPM:
    torch.manual_seed(0)
    return DDPM(resolve_config(DDPM, "tiny", spec, overrides), spec)


def test_short_training_lowers_the_loss(digits_spec):
    model = make(digits_spec, ch=16, T=100, lr=3e-3, batch_size=32, ema_decay=0.0)
    x = contract_batch(digits_spec, n=64, seed=1)
    losses = []
    model.train(True)
    for _ in range(80):
        losses.append(model.train_step(x[torch.randint(0, 64, (32,))])["loss"])
        model.step += 1
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert first > 0.8  # the zero-initialised output predicts eps = 0: loss ~ E[eps^2] = 1
    assert last < 0.7 * first, (first, last)


def test_ema_tracks_the_trained_weights(digits_spec):
    model = make(digits_spec, ema_decay=0.5, ema_warmup=False)
    x = contract_batch(digits_spec)
    before = [p.clone() for p in model.averaged["ema"].parameters()]
    model.train_step(x)
    for pe, p0, p in zip(model.averaged["ema"].parameters(), before, model.net.parameters()):
        assert torch.allclose(pe, 0.5 * p0 + 0.5 * p.detach(), atol=1e-7)
    assert "ema" not in model.networks and model.sampling_net is model.averaged["ema"]
    assert model.count_parameters() == sum(p.numel() for p in model.net.parameters())
    model.train(True)
    assert model.net.training and not model.averaged["ema"].training


@pytest.mark.parametrize("steps,nfe,label", [(None, 20, "ancestral-20"), (20, 20, "ancestral-20"), (5, 5, "DDIM-5")])
def test_samplers_are_deterministic_under_a_seed(digits_spec, steps, nfe, label):
    model = make(digits_spec)
    model.train_step(contract_batch(digits_spec))
    model.train(False)
    with torch.inference_mode():
        a = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(7))
        assert model.nfe(steps) == nfe and model.sampler_name(steps) == label
        b = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(7))
        c = model.sample(3, steps=steps, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 1, 8, 8) and a.min() >= 0 and a.max() <= 1


def test_ddim_with_eta_names_itself_and_uses_noise(digits_spec):
    model = make(digits_spec, ddim_eta=1.0)
    model.train(False)
    assert model.sampler_name(5) == "DDIM-5, eta=1"
    with torch.inference_mode():
        a = model.sample(2, steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(a).all()


def test_bound_is_finite_and_above_the_entropy_of_known_data():
    """Data: 3 fixed 8x8 K=17 images drawn with probabilities .5/.3/.2, entropy H = 1.0297 nats.
    The model's bound, averaged under that distribution, is finite and >= H, before and after training."""
    spec = DataSpec(1, 8, 8, 17)
    g = torch.Generator().manual_seed(0)
    protos = spec.to_unit(torch.randint(0, 17, (3, 1, 8, 8), generator=g))
    probs = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    H = float(-(probs * probs.log()).sum())
    model = make(spec, T=50, vlb_strata=49, ch=16, lr=3e-3, batch_size=30)
    for step in range(2):
        if step:
            idx = torch.multinomial(probs.float(), 30 * 40, replacement=True, generator=g).reshape(40, 30)
            model.train(True)
            for row in idx:
                model.train_step(protos[row])
                model.step += 1
        model.train(False)
        with torch.no_grad():
            nats = model.nll(protos).double()
            estimates = model.nll_estimates(protos)
        assert nats.shape == (3,) and torch.isfinite(nats).all()
        assert float((probs * nats).sum()) >= H
        assert estimates[0].kind == "VLB" and torch.isfinite(estimates[0].nats).all()
    # the batch-content seeding makes the estimate reproducible
    with torch.no_grad():
        assert torch.equal(model.nll(protos), model.nll(protos))


def test_checkpoint_keeps_the_ema_and_the_optimiser(digits_spec):
    model = make(digits_spec)
    model.train_step(contract_batch(digits_spec))
    model.step += 1
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make(digits_spec)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    for a, b in zip(fresh.averaged["ema"].parameters(), model.averaged["ema"].parameters()):
        assert torch.equal(a, b)
    assert fresh.optimizers["opt"].state_dict()["state"].keys() == model.optimizers["opt"].state_dict()["state"].keys()


def test_presets_resolve_for_every_data_shape():
    for spec in CONTRACT_SPECS.values():
        for preset in DDPM.presets:
            cfg = resolve_config(DDPM, preset, spec)
            assert cfg.T >= 1 and cfg.batch_size >= 1
    quick = resolve_config(DDPM, "quick", CONTRACT_SPECS["28x28x1-K256"])
    assert quick.attn_resolutions == [14]  # the lowest resolution of a two-level U-Net on 28x28
