"""Every family's restoration methods on untrained tiny models: the shape and range, the known sub-pixels
reproduced exactly after quantisation, and the same draw from the same generator seed."""
from __future__ import annotations

import pytest
import torch

from genbench.testing import tiny_model
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
    monkeypatch.setattr(ldm, "LATENT_FIT_STEPS", 5)
    monkeypatch.setattr(ldm, "POOL", 16)
    monkeypatch.setattr(gan, "RESTARTS", 2)


@pytest.fixture(scope="module")
def setup():
    registry = build_registry(autoload=True)
    data = resolve_dataset("digits", registry).load()
    return registry, data


def tiny(registry, name, spec):
    return tiny_model(registry.models.get(name), spec)


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


def test_pixelcnn_completes_other_masks_by_importance_resampling_and_says_so(setup):
    registry, data = setup
    model = tiny(registry, "pixelcnn", data.spec)
    center = parse_mask("center").known_mask(2, 8, 8)
    prefix = parse_mask("bottom-half").known_mask(2, 8, 8)
    assert model.completion_unsupported(center) is None
    assert model.restoration_details("complete", prefix) == {"method": "raster-prefix exact"}
    details = model.restoration_details("complete", center)
    assert details["method"].startswith("importance resampling") and details["particles"] == 16
    model.restoration_options = {"particles": 3}
    assert model.restoration_details("complete", center)["particles"] == 3
    assert model.completion_nfe(center) == 3 * (16 + 1)  # K x (unknown sub-pixels + a scoring pass)
    assert model.completion_nfe(prefix) == 32  # exact: one per unknown sub-pixel, K does not apply
    x = data.unit("test")[:2]
    a = model.complete(x, center, generator=torch.Generator().manual_seed(3))
    k = center.expand_as(x)
    assert torch.equal(data.spec.to_unit(data.spec.quantise(a))[k], x[k])
    assert torch.equal(a, model.complete(x, center, generator=torch.Generator().manual_seed(3)))
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


class TwoPointDenoiser:
    """The exact noise prediction of the data distribution with mass 1/2 on each of two images (``points``
    (2, C, H, W) in [-1, 1]): eps(z_t) = (z_t - alpha_t E[x | z_t]) / sigma_t, with the VDM's own schedule."""

    def __init__(self, net, points):
        self.schedule, self.points = net.schedule, points

    def eps(self, z, gamma):
        from genbench.diffusion.continuous import alpha_sigma

        alpha, sigma = alpha_sigma(gamma.view(-1, 1, 1, 1).double())
        zd = z.double()
        d2 = torch.stack([((zd - alpha * p) ** 2).flatten(1).sum(1) for p in self.points.double()], 1)
        w = torch.softmax(-d2 / (2 * sigma.view(-1, 1) ** 2), 1)  # p(which image | z_t)
        mean = torch.einsum("nk,kchw->nchw", w, self.points.double())
        return ((zd - alpha * mean) / sigma).float()


def test_vdm_colourises_with_the_grey_constraint(setup, monkeypatch):
    """With a perfect denoiser of a two-image distribution whose images differ in grey, p(x | grey of image i)
    is image i: RePaint on the grey axis must return it (the grey constraint chooses, the model colours)."""
    registry, _ = setup
    from genbench import DataSpec

    import genbench_vdm.completion as vdm

    spec = DataSpec(3, 8, 8, 256)
    model = tiny(registry, "vdm", spec)
    levels = torch.randint(40, 216, (2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    points = levels.float() / 255
    fake = TwoPointDenoiser(model.sampling_net, points * 2 - 1)
    monkeypatch.setattr(type(model), "sampling_net", property(lambda self: fake))
    truth = points[torch.tensor([0, 1, 0, 1])]
    grey = truth.mean(1, keepdim=True)
    out = vdm.colourise(model, grey, torch.Generator().manual_seed(1))
    assert out.shape == (4, 3, 8, 8)
    assert torch.allclose(out.mean(1, keepdim=True), grey, atol=1e-5)  # the grey constraint, exactly
    assert float((out - truth).abs().max()) < 2.5 / 255, float((out - truth).abs().max())  # the right image
    assert torch.equal(out, vdm.colourise(model, grey, torch.Generator().manual_seed(1)))
    assert vdm.colourise_nfe(model) == vdm.completion_nfe(model)


def test_ldm_does_not_claim_colourisation(setup):
    registry, _ = setup
    from genbench.tasks.options import declared_options

    cls = registry.models.get("ldm")
    assert "colourise" not in cls.capabilities
    assert all("colourise" not in o.capabilities for o in declared_options(cls).values())
