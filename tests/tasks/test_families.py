"""Every family's restoration methods on untrained tiny models: the shape and range, the known sub-pixels
reproduced exactly after quantisation, and the same draw from the same generator seed."""
from __future__ import annotations

import pytest
import torch

from genbench.config import resolve_config
from genbench.model import supports
from genbench.plugins import build_registry
from genbench.data.files import resolve_dataset
from genbench.tasks.masks import parse_mask

FAMILIES = ["ddpm", "vdm", "ldm", "vae", "gan", "pixelcnn"]


@pytest.fixture(autouse=True)
def small_budgets(monkeypatch):
    """Fewer RePaint resamplings and latent-fit steps: these tests check the plumbing, not the quality."""
    import genbench.tasks.latent_fit as latent_fit
    import genbench_ddpm.completion as ddpm
    import genbench_gan.completion as gan
    import genbench_ldm.completion as ldm
    import genbench_vdm.completion as vdm

    for module in (ddpm, ldm, vdm):
        monkeypatch.setattr(module, "RESAMPLINGS", 2)
        monkeypatch.setattr(module, "JUMP_LENGTH", 5)
    monkeypatch.setattr(latent_fit, "STEPS", 20)
    monkeypatch.setattr(gan, "RESTARTS", 2)


@pytest.fixture(scope="module")
def setup():
    registry = build_registry(autoload=True)
    data = resolve_dataset("digits", registry).load()
    return registry, data


def tiny(registry, name, spec):
    cls = registry.models.get(name)
    torch.manual_seed(0)
    model = cls(resolve_config(cls, "tiny", spec, {}), spec, "cpu")
    model.train(False)
    return model


@pytest.mark.parametrize("name", FAMILIES)
def test_completion_keeps_the_known_region_and_follows_the_generator(setup, name):
    registry, data = setup
    model = tiny(registry, name, data.spec)
    assert supports(model, "complete")
    x = data.unit("test")[:3]
    known = parse_mask("bottom-half").known_mask(3, 8, 8)
    assert model.completion_unsupported(known) is None
    a = model.complete(x, known, generator=torch.Generator().manual_seed(5)).detach()
    b = model.complete(x, known, generator=torch.Generator().manual_seed(5)).detach()
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    q = data.spec.to_unit(data.spec.quantise(a))
    k = known.expand_as(x)
    assert torch.equal(q[k], x[k])
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", [f for f in FAMILIES if f != "pixelcnn"])
def test_denoising_returns_images(setup, name):
    registry, data = setup
    model = tiny(registry, name, data.spec)
    assert supports(model, "denoise")
    x = data.unit("test")[:3]
    y = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    out = model.denoise(y, 0.2, generator=torch.Generator().manual_seed(1)).detach()
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1


def test_pixelcnn_refuses_non_prefix_masks(setup):
    registry, data = setup
    model = tiny(registry, "pixelcnn", data.spec)
    assert "raster-order prefix" in model.completion_unsupported(parse_mask("center").known_mask(1, 8, 8))
    assert not supports(model, "denoise")


def test_ddpm_colourises_with_the_grey_constraint(setup):
    registry, _ = setup
    from genbench import DataSpec

    spec = DataSpec(3, 8, 8, 256)
    model = tiny(registry, "ddpm", spec)
    grey = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    out = model.colourise(grey, generator=torch.Generator().manual_seed(1))
    assert out.shape == (4, 3, 8, 8)
    inside = ((out > 0) & (out < 1)).all(1, keepdim=True)  # where no channel was clamped to [0, 1]
    assert inside.float().mean() > 0.2
    assert torch.allclose(out.mean(1, keepdim=True)[inside], grey[inside], atol=1e-5)
