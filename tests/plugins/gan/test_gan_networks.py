"""Generator/discriminator shapes, and spectral normalisation of D's layers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genbench.testing import CONTRACT_SPECS
from genbench_gan.networks import Discriminator, Generator, ladder

SN_TOLERANCE = 0.01  # top singular value of every normalised D weight within [1 - 1e-4, 1 + 1%]


def test_ladder_sizes():
    assert ladder(8, 8) == (4, 4, 1)
    assert ladder(28, 28) == (7, 7, 2)
    assert ladder(32, 32) == (4, 4, 3)
    with pytest.raises(ValueError, match="even image side"):
        ladder(7, 7)


@pytest.mark.parametrize("key", list(CONTRACT_SPECS))
def test_shapes(key):
    spec = CONTRACT_SPECS[key]
    torch.manual_seed(0)
    g = Generator(16, spec.channels, spec.height, spec.width, width_mult=8)
    d = Discriminator(spec.channels, spec.height, spec.width, width_mult=8)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, *spec.shape)
    assert x.min() >= -1 and x.max() <= 1
    out = d(x)
    assert out.shape == (5,)  # one logit per image
    assert torch.isfinite(out).all()


def sn_layers(d: nn.Module) -> list[nn.Module]:
    return [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and hasattr(m, "parametrizations")]


def top_singular_value(w: torch.Tensor) -> float:
    """Largest singular value of the weight viewed as a (out, in * kh * kw) matrix (Miyato et al. 2018)."""
    return float(torch.linalg.svdvals(w.detach().reshape(w.shape[0], -1))[0])


def test_spectral_norm_keeps_top_singular_value_near_one():
    torch.manual_seed(0)
    d = Discriminator(1, 8, 8, width_mult=16, sn=True)
    layers = sn_layers(d)
    assert len(layers) == 4  # stem conv, down conv, 3x3 conv, linear head
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    x = torch.randn(16, 1, 8, 8)
    for _ in range(5):  # move the raw weights away from their initialisation
        opt.zero_grad()
        d(x).square().mean().backward()
        opt.step()
    with torch.no_grad():  # power iterations: one per training-mode forward pass
        for _ in range(10):
            d(x[:2])
    d.train(False)
    raw = [top_singular_value(m.parametrizations.weight.original) for m in layers]
    assert max(abs(s - 1) for s in raw) > 0.2, f"raw weights already have sigma ~ 1 ({raw}); the test would prove nothing"
    for m in layers:
        s = top_singular_value(m.weight)
        assert 1 - 1e-4 <= s <= 1 + SN_TOLERANCE, f"{m}: top singular value {s:.4f} after spectral norm"


def test_without_spectral_norm_there_are_no_parametrizations():
    d = Discriminator(1, 8, 8, width_mult=8, sn=False)
    assert sn_layers(d) == []
