"""Sampling: the row-cached sampler draws exactly what the naive loop draws, samples follow the
model's own probabilities, and completion keeps the given sub-pixels and samples the rest."""
from __future__ import annotations

import itertools

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import contract_batch
from genbench_pixelcnn import PixelCNN
from genbench_pixelcnn.sampler import sample_fast, sample_naive


def model_for(spec: DataSpec, seed: int = 0, sharpen: float = 1.0, **overrides) -> PixelCNN:
    torch.manual_seed(seed)
    model = PixelCNN(resolve_config(PixelCNN, "tiny", spec, overrides), spec)
    with torch.no_grad():
        for p in model.net.parameters():
            p.mul_(sharpen)
    model.train(False)
    return model


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "spec", [DataSpec(1, 8, 8, 17), DataSpec(3, 5, 6, 7), DataSpec(1, 12, 12, 4)], ids=["digits", "rgb", "wide"]
)
def test_row_links_and_cropped_rows_give_the_full_network_logits(spec):
    # layers=3 with 3x3 kernels: reach 3 < 12, so the cropping (not just the caching) is exercised
    model = model_for(spec, channels=6, layers=3, head_channels=6)
    x = contract_batch(spec, n=3)
    net = model.net
    with torch.no_grad():
        full = net(x)
        for i in range(spec.height):
            links = net.row_links(x, i)
            for j in range(spec.width):
                s = max(0, j - net.reach)
                part = net.horizontal(x[:, :, i : i + 1, s : j + 1], [l[:, :, :, s : j + 1] for l in links])
                torch.testing.assert_close(part[:, :, :, 0, -1], full[:, :, :, i, j], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", [DataSpec(1, 8, 8, 17), DataSpec(3, 4, 5, 6)], ids=["digits", "rgb"])
def test_fast_sampler_equals_naive_sampler(spec):
    model = model_for(spec, channels=6, layers=3, head_channels=12, sharpen=2.0)
    with torch.inference_mode():
        a = sample_fast(model.net, 6, spec.shape, gen(11), model.device)
        b = sample_naive(model.net, 6, spec.shape, gen(11), model.device)
        c = sample_fast(model.net, 6, spec.shape, gen(12), model.device)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(spec.to_unit(spec.to_levels(a)), a), "samples must lie on the K levels"


def test_sample_sets_nfe_and_is_deterministic():
    spec = DataSpec(3, 4, 4, 5)
    model = model_for(spec)
    a = model.sample(3, generator=gen(1))
    assert model.nfe(None) == spec.dims and a.shape == (3, *spec.shape)
    assert torch.equal(a, model.sample(3, generator=gen(1)))
    naive = model_for(spec, sampler="naive")
    assert torch.equal(a, naive.sample(3, generator=gen(1)))
    assert model.sampler_name(None) == "autoregressive-fast"


def image_probabilities(model: PixelCNN, spec: DataSpec) -> torch.Tensor:
    grid = torch.tensor(list(itertools.product(range(spec.levels), repeat=spec.dims)), dtype=torch.float32)
    with torch.no_grad():
        return torch.exp(-model.nll(spec.to_unit(grid).view(-1, *spec.shape)).double())


def codes(x: torch.Tensor, spec: DataSpec) -> torch.Tensor:
    """Index of each image in the itertools.product order of ``image_probabilities``."""
    levels = spec.to_levels(x).flatten(1)
    weights = spec.levels ** torch.arange(spec.dims - 1, -1, -1)
    return (levels * weights).sum(1)


def test_samples_follow_the_model_distribution():
    """20000 draws on 2x2x1 K=2 (16 images): empirical frequencies match exp(-nll) within 5 s.e."""
    spec = DataSpec(1, 2, 2, 2)
    model = model_for(spec, seed=2, sharpen=3.0)
    p = image_probabilities(model, spec)
    n = 20000
    freq = torch.bincount(codes(model.sample(n, generator=gen(0)), spec), minlength=16).double() / n
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() <= 5 * se + 1e-4).all(), (freq, p)


def test_complete_keeps_known_and_samples_the_conditional():
    """Top row of a 2x2x1 K=2 image given: known pixels kept, bottom row ~ p(bottom | top)."""
    spec = DataSpec(1, 2, 2, 2)
    model = model_for(spec, seed=4, sharpen=3.0)
    p = image_probabilities(model, spec).view(2, 2, 4)  # [top-left, top-right, bottom code]
    top = torch.tensor([1.0, 0.0])
    n = 20000
    x = torch.zeros(n, *spec.shape)
    x[:, 0, 0] = top
    mask = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    mask[..., 0, :] = True
    out = model.complete(x, mask, generator=gen(3))
    assert torch.equal(out[:, :, 0], x[:, :, 0])
    assert model.completion_nfe(mask) == 2 and model.completion_nfe(torch.zeros_like(mask)) == spec.dims
    cond = p[1, 0] / p[1, 0].sum()
    freq = torch.bincount(codes(out, spec) % 4, minlength=4).double() / n
    se = (cond * (1 - cond) / n).sqrt()
    assert ((freq - cond).abs() <= 5 * se + 1e-4).all(), (freq, cond)


def test_complete_top_half_of_digits_keeps_pixels_and_matches_naive():
    spec = DataSpec(1, 8, 8, 17)
    model = model_for(spec, channels=6, layers=3, head_channels=12)
    naive = model_for(spec, channels=6, layers=3, head_channels=12, sampler="naive")
    x = contract_batch(spec, n=5)
    mask = torch.zeros(5, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :4] = True
    mask[2, :, 4, :3] = True  # per-image masks work too
    a = model.complete(x, mask, generator=gen(5))
    assert torch.equal(a[mask], x[mask])
    assert not torch.equal(a[~mask], x[~mask])
    assert torch.equal(a, naive.complete(x, mask, generator=gen(5)))
    # nothing known: completion is plain sampling (same noise, same draws); everything known: x itself
    assert torch.equal(model.complete(x, torch.zeros_like(mask), generator=gen(6)), model.sample(5, generator=gen(6)))
    assert torch.equal(model.complete(x, torch.ones_like(mask), generator=gen(6)), x)
