"""GAN objectives against values computed by hand from the papers' formulas."""
from __future__ import annotations

import math

import pytest
import torch

from genbench_gan.losses import get_losses, hinge_d_loss, hinge_g_loss, ns_d_loss, ns_g_loss

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


def test_hinge_losses_match_hand_computation():
    # L_D = mean(relu(1 - [2, -1])) + mean(relu(1 + [0.5, -3])) = mean(0, 2) + mean(1.5, 0) = 1 + 0.75
    assert hinge_d_loss(REAL, FAKE).item() == pytest.approx(1.75, abs=1e-6)
    # L_G = -mean([0.5, -3]) = 1.25
    assert hinge_g_loss(FAKE).item() == pytest.approx(1.25, abs=1e-6)


def test_non_saturating_losses_match_hand_computation():
    # -log sigma(t) = log(1 + e^-t); -log(1 - sigma(t)) = log(1 + e^t)
    d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    g = (softplus(-0.5) + softplus(3.0)) / 2
    assert ns_d_loss(REAL, FAKE).item() == pytest.approx(d, abs=1e-6)
    assert ns_g_loss(FAKE).item() == pytest.approx(g, abs=1e-6)
    # equivalent to binary cross-entropy with sigmoid: D's loss at D = 1/2 everywhere is 2 log 2
    zeros = torch.zeros(5)
    assert ns_d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    sig = torch.sigmoid
    direct = -(torch.log(sig(REAL)).mean() + torch.log(1 - sig(FAKE)).mean())
    assert ns_d_loss(REAL, FAKE).item() == pytest.approx(direct.item(), abs=1e-5)


def test_losses_by_name_and_unknown_name():
    assert get_losses("hinge") == (hinge_d_loss, hinge_g_loss)
    assert get_losses("ns") == (ns_d_loss, ns_g_loss)
    with pytest.raises(ValueError, match="choose one of: hinge, ns"):
        get_losses("wasserstein")
