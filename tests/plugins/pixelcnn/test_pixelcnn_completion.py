"""The PixelCNN's completion for masks that are not a raster-order prefix (``genbench_pixelcnn.completion``):
sampling-importance-resampling checked by enumeration on a hand-made autoregressive model of 2x2 binary images
against the exact conditional; with one particle it is the naive proposal, which the same check rejects."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genbench_pixelcnn.completion import completion_method, completion_nfe, importance_complete
from genbench_pixelcnn.sampler import sample_naive


class TableNet(nn.Module):
    """p(x_d = 1 | x_<d) for the 4 sub-pixels of a 1x2x2 binary image in raster order, from fixed tables
    (causal by construction); forward gives logits (B, C=1, K=2, H=2, W=2) as the PixelCNN's network does."""

    levels = 2

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # the samplers read the dtype from the parameters
        self.p0 = torch.tensor(0.5)
        self.p1 = torch.tensor([0.1, 0.9])                          # x1 mostly copies x0
        self.p2 = torch.tensor([[0.3, 0.6], [0.4, 0.7]])            # [x0, x1]
        self.p3 = torch.tensor([[[0.05, 0.95], [0.2, 0.8]], [[0.3, 0.9], [0.1, 0.85]]])  # [x0, x1, x2]: x3 ~ x2

    def prob_one(self, b: torch.Tensor) -> torch.Tensor:
        b0, b1, b2 = b[:, 0, 0, 0], b[:, 0, 0, 1], b[:, 0, 1, 0]
        p = torch.stack([self.p0.expand(len(b)), self.p1[b0], self.p2[b0, b1], self.p3[b0, b1, b2]], 1)
        return p.view(len(b), 1, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.prob_one(x.round().long().clamp(0, 1))
        return torch.stack([torch.log1p(-p), torch.log(p)], 2)  # (B, 1, 2, 2, 2)

    def joint(self, bits: tuple[int, int, int, int]) -> float:
        b = torch.tensor(bits).view(1, 1, 2, 2)
        p = self.prob_one(b).flatten()
        return float(torch.prod(torch.where(b.flatten() == 1, p, 1 - p)))


KNOWN = torch.tensor([[False, True], [False, True]]).view(1, 1, 2, 2)  # the right column: not a raster prefix
VALUES = {(0, 1): 1, (1, 1): 0}  # x1 = 1, x3 = 0


def exact_conditional(net: TableNet) -> dict[tuple[int, int], float]:
    """p(x0, x2 | x1, x3) by enumerating the 4 completions."""
    joint = {(a, c): net.joint((a, VALUES[(0, 1)], c, VALUES[(1, 1)])) for a, c in itertools.product((0, 1), repeat=2)}
    z = sum(joint.values())
    return {k: v / z for k, v in joint.items()}


def empirical(net: TableNet, particles: int, n: int, seed: int) -> dict[tuple[int, int], float]:
    known = torch.zeros(n, 1, 2, 2)
    known[:, 0, 0, 1], known[:, 0, 1, 1] = VALUES[(0, 1)], VALUES[(1, 1)]
    mask = KNOWN.expand(n, 1, 2, 2)

    def sample(values, m, gen):
        return sample_naive(net, len(values), (1, 2, 2), gen, torch.device("cpu"), known=values, mask=m)

    with torch.no_grad():
        out = importance_complete(sample, lambda x: F.log_softmax(net(x), 2), known, mask, 2, particles,
                                  torch.Generator().manual_seed(seed))
    assert torch.equal(out[mask], known[mask])  # the known sub-pixels are kept
    b = out.round().long()
    return {(a, c): float(((b[:, 0, 0, 0] == a) & (b[:, 0, 1, 0] == c)).double().mean())
            for a, c in itertools.product((0, 1), repeat=2)}


def total_variation(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p[k] - q[k]) for k in p)


def test_importance_resampling_matches_the_exact_conditional_by_enumeration():
    # 20000 images: sampling noise of the TV distance ~0.006; SIR's bias with K = 64 is O(1/K), here < 0.01.
    # Tolerance 0.03 (measured: ~0.01); the naive proposal (K = 1) is ~0.48 away, so the check tells them apart.
    net = TableNet()
    exact = exact_conditional(net)
    sir = empirical(net, particles=64, n=20000, seed=0)
    assert total_variation(sir, exact) < 0.03, (sir, exact)
    naive = empirical(net, particles=1, n=20000, seed=0)
    assert total_variation(naive, exact) > 0.15, (naive, exact)  # ignoring x3 is measurably wrong


def test_a_prefix_mask_is_sampled_once_and_exactly():
    net = TableNet()
    mask = torch.tensor([[True, True], [False, False]]).view(1, 1, 2, 2).expand(5, 1, 2, 2)
    known = torch.ones(5, 1, 2, 2)
    sample = lambda values, m, gen: sample_naive(net, len(values), (1, 2, 2), gen, torch.device("cpu"),  # noqa: E731
                                                 known=values, mask=m)
    a = importance_complete(sample, lambda x: F.log_softmax(net(x), 2), known, mask, 2, 64,
                            torch.Generator().manual_seed(1))
    b = sample(known, mask, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # no proposals, no resampling: the ancestral draw itself
    assert completion_method(mask, 64) == "raster-prefix exact" and completion_nfe(2, mask, 64) == 2
    assert completion_method(KNOWN, 8).startswith("importance resampling, K=8")
    assert completion_nfe(2, KNOWN, 8) == 8 * 3


def test_zero_particles_is_refused():
    net = TableNet()
    with pytest.raises(ValueError, match="at least 1 particle"):
        importance_complete(lambda *a: a[0], lambda x: F.log_softmax(net(x), 2), torch.zeros(1, 1, 2, 2),
                            KNOWN, 2, 0, None)
