"""The exact likelihood: normalised per sub-pixel, normalised over all images, and equal to the
chain rule of per-sub-pixel log-softmax values computed by hand."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from genbench import DataSpec
from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, contract_batch
from genbench_pixelcnn import PixelCNN


def tiny_model(spec: DataSpec, seed: int = 0, **overrides) -> PixelCNN:
    torch.manual_seed(seed)
    overrides = {"ema_decay": 0.0, **overrides}  # the trained network itself (the average is another copy of it)
    model = PixelCNN(resolve_config(PixelCNN, "tiny", spec, overrides), spec)
    model.net.double()
    model.train(False)
    return model


def all_images(spec: DataSpec) -> torch.Tensor:
    """Every one of the K**D images of ``spec`` as floats k/(K-1), float64."""
    grid = torch.tensor(list(itertools.product(range(spec.levels), repeat=spec.dims)), dtype=torch.float64)
    return (grid / (spec.levels - 1)).view(-1, *spec.shape)


@pytest.mark.parametrize("name", list(CONTRACT_SPECS))
def test_softmax_sums_to_one_over_levels(name):
    spec = CONTRACT_SPECS[name]
    model = tiny_model(spec)
    with torch.no_grad():
        p = model.log_probs(contract_batch(spec, n=2).double()).exp()
    assert p.shape == (2, spec.channels, spec.levels, spec.height, spec.width)
    torch.testing.assert_close(p.sum(2), torch.ones_like(p.sum(2)), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "spec", [DataSpec(1, 2, 2, 2), DataSpec(1, 2, 2, 3), DataSpec(3, 1, 2, 2)], ids=["2x2x1-K2", "2x2x1-K3", "1x2x3-K2"]
)
def test_total_probability_over_all_images_is_one(spec):
    """sum over all K**D images of exp(-nll) = 1: a proper distribution over discrete images."""
    model = tiny_model(spec, seed=3, channels=6, layers=2, head_channels=12)
    # make the model far from uniform, so a wrong normalisation could not pass by symmetry
    with torch.no_grad():
        for p in model.net.parameters():
            p.mul_(3.0)
        nll = model.nll(all_images(spec))
    probs = torch.exp(-nll)
    assert probs.max() / probs.min() > 2.0, "test model is too close to uniform to be informative"
    assert nll.min() >= 0
    assert math.isclose(float(probs.sum()), 1.0, abs_tol=1e-10)


def test_nll_is_the_sum_of_per_subpixel_log_softmax_by_hand():
    """-log P(x) = -sum_d log softmax(logits_d)[x_d], with each conditional evaluated on an input
    whose sub-pixels at and after d are replaced by noise (they must not matter)."""
    spec = DataSpec(3, 3, 3, 5)
    model = tiny_model(spec, seed=5, channels=6, layers=2, head_channels=6)
    x = contract_batch(spec, n=3, seed=7).double()
    levels = spec.to_levels(x)
    g = torch.Generator().manual_seed(0)
    expected = [0.0] * len(x)
    with torch.no_grad():
        for i in range(spec.height):
            for j in range(spec.width):
                for c in range(spec.channels):
                    scrambled = x.clone()
                    noise = torch.rand(x.shape, generator=g, dtype=torch.float64)
                    later = torch.zeros(spec.shape, dtype=torch.bool)
                    later[:, i, j + 1 :] = True
                    later[:, i + 1 :] = True
                    later[c:, i, j] = True
                    scrambled[:, later] = noise[:, later]
                    logits = model.net(scrambled)[:, c, :, i, j]
                    for b in range(len(x)):
                        row = [float(v) for v in logits[b]]
                        lse = max(row) + math.log(sum(math.exp(v - max(row)) for v in row))
                        expected[b] -= row[int(levels[b, c, i, j])] - lse
        got = model.nll(x)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-10)


def test_training_lowers_the_nll_of_the_training_batch():
    spec = CONTRACT_SPECS["8x8x1-K17"]
    torch.manual_seed(0)
    model = PixelCNN(resolve_config(PixelCNN, "tiny", spec, {"channels": 8, "head_channels": 16, "lr": 3e-3}), spec)
    x = contract_batch(spec, n=16)
    with torch.no_grad():
        before = model.nll(x).mean()
    model.train(True)
    losses = [model.train_step(x)["loss"] for _ in range(30)]
    with torch.no_grad():
        after = model.nll(x).mean()
    assert after < 0.9 * before, (float(before), float(after))
    assert math.isclose(losses[0], float(before) / spec.dims, rel_tol=1e-4)  # loss is nats/dim of the batch
