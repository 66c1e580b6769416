"""The shared contract every model plugin passes; importable so third parties can run it.

    from genbench.testing import check_model_contract
    def test_contract():
        check_model_contract(MyModel)

It checks: a training step returns finite scalar losses; samples have the data's
shape, lie in [0, 1] and are deterministic under a fixed generator; ``last_nfe``
is set; ``nll`` exists iff a likelihood is declared and is finite and >= 0 nats
(a probability mass is <= 1); a ``state_dict`` saved with ``torch.save`` loads
with ``weights_only=True`` into a fresh model that then draws identical samples.
"""
from __future__ import annotations

import io
import math

import torch

from genbench.config import resolve_config
from genbench.model import DataSpec, GenerativeModel
from genbench.runner import pick_device

DIGITS_SPEC = DataSpec(channels=1, height=8, width=8, levels=17)
CONTRACT_SPECS = {
    "8x8x1-K17": DIGITS_SPEC,
    "28x28x1-K256": DataSpec(channels=1, height=28, width=28, levels=256),
    "32x32x3-K256": DataSpec(channels=3, height=32, width=32, levels=256),
}


def contract_batch(spec: DataSpec, n: int = 8, seed: int = 0) -> torch.Tensor:
    """A batch of structured images (blobs plus noise) at the data's levels, as floats in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, spec.height), torch.linspace(-1, 1, spec.width), indexing="ij")
    centres = torch.rand(n, 2, generator=g) - 0.5
    blob = torch.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) * 4)
    img = blob[:, None].expand(n, spec.channels, spec.height, spec.width)
    img = (img + 0.1 * torch.rand(n, spec.channels, spec.height, spec.width, generator=g)).clamp(0, 1)
    return spec.to_unit(spec.to_levels(img))


def _draw(model: GenerativeModel, n: int, seed: int, steps: int | None = None) -> torch.Tensor:
    model.train(False)
    with torch.inference_mode():
        return model.sample(n, steps=steps, generator=torch.Generator().manual_seed(seed)).detach().cpu()


def check_model_contract(
    model_cls: type[GenerativeModel], spec: DataSpec = DIGITS_SPEC, preset: str = "tiny", device: str = "cpu"
) -> None:
    """Raise AssertionError naming the first broken promise of ``model_cls``."""
    name = getattr(model_cls, "name", model_cls.__name__)
    assert isinstance(name, str) and name, "model class needs a non-empty string `name`"
    assert model_cls.likelihood in (None, "exact", "bound"), f"{name}: likelihood must be None, 'exact' or 'bound'"
    assert preset in model_cls.presets, f"{name}: needs a {preset!r} preset for tests"
    config = resolve_config(model_cls, preset, spec)
    device = str(pick_device(device))  # as the runner prepares it (deterministic cuDNN on CUDA)
    torch.manual_seed(0)
    model = model_cls(config, spec, device)
    x = contract_batch(spec).to(device)

    model.train(True)
    losses = model.train_step(x)
    model.step += 1
    assert isinstance(losses, dict) and "loss" in losses, f"{name}: train_step must return a dict with a 'loss' key"
    for k, v in losses.items():
        assert math.isfinite(float(v)), f"{name}: train_step loss {k!r} is not finite ({v})"

    a = _draw(model, 4, seed=123)
    assert tuple(a.shape) == (4, *spec.shape), f"{name}: sample(4) has shape {tuple(a.shape)}, expected {(4, *spec.shape)}"
    assert torch.isfinite(a).all(), f"{name}: samples are not finite"
    assert a.min() >= 0.0 and a.max() <= 1.0, f"{name}: samples must lie in [0, 1], got [{a.min():.3f}, {a.max():.3f}]"
    assert model.last_nfe >= 1, f"{name}: sample() must set last_nfe (network evaluations per image)"
    b = _draw(model, 4, seed=123)
    assert torch.equal(a, b), f"{name}: sample() is not deterministic under a fixed generator"
    if model_cls.supports_steps:
        c = _draw(model, 2, seed=1, steps=2)
        assert tuple(c.shape) == (2, *spec.shape), f"{name}: sample(steps=2) has the wrong shape"

    if model_cls.likelihood is None:
        try:
            model.nll(x)
        except NotImplementedError:
            pass
        else:
            raise AssertionError(f"{name}: declares no likelihood but nll() returned a value")
    else:
        with torch.no_grad():
            nll = model.nll(x)
        assert tuple(nll.shape) == (len(x),), f"{name}: nll must return one value per image, got {tuple(nll.shape)}"
        assert torch.isfinite(nll).all(), f"{name}: nll is not finite"
        assert (nll >= 0).all(), f"{name}: nll < 0 nats means P(x) > 1: not a likelihood of discrete data"
        for est in model.nll_estimates(x):
            assert torch.isfinite(est.nats).all() and (est.nats >= 0).all(), f"{name}: {est.label} estimate invalid"

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, map_location=device, weights_only=True)
    fresh = model_cls(config, spec, device)
    fresh.load_state_dict(state)
    assert fresh.step == model.step, f"{name}: step not restored by load_state_dict"
    assert torch.equal(_draw(fresh, 4, seed=123), a), f"{name}: a reloaded model draws different samples"
