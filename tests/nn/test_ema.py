"""The one EMA: the decay rule with and without warm-up, the update by hand, the frozen copy, and the
Polyak average of torch's AveragedModel reproduced bit for bit (decay 0 at the first update)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genbench.nn.ema import averaged_copy, ema_decay, ema_update


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Conv2d(4, 2, 1))


def test_decay_warmup_is_the_tensorflow_schedule():
    assert ema_decay(0, 0.999) == pytest.approx(0.1)
    assert ema_decay(10, 0.999) == pytest.approx(11 / 20)
    assert ema_decay(10**6, 0.999) == 0.999
    assert ema_decay(0, 0.999, warmup=False) == 0.999


def test_averaged_copy_is_frozen_in_eval_and_independent():
    net = small_net()
    avg = averaged_copy(net)
    assert not avg.training and not any(p.requires_grad for p in avg.parameters())
    assert all(p.requires_grad for p in net.parameters()) and net.training
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert not torch.equal(next(net.parameters()), next(avg.parameters()))


def test_update_is_the_recurrence_and_copies_buffers():
    net = small_net()
    avg = averaged_copy(net)
    before = [p.clone() for p in avg.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net[1].running_mean.fill_(3.0)
    ema_update(avg, net, 0.75)
    for b, pa, p in zip(before, avg.parameters(), net.parameters()):
        torch.testing.assert_close(pa, 0.75 * b + 0.25 * p)
        assert not pa.requires_grad
    assert torch.equal(avg[1].running_mean, net[1].running_mean)
    ema_update(avg, net, 0.0)  # decay 0 copies exactly
    assert all(torch.equal(pa, p) for pa, p in zip(avg.parameters(), net.parameters()))


def test_first_update_copying_then_fixed_decay_is_torchs_averaged_model_bit_for_bit():
    """PixelCNN's average: AveragedModel(get_ema_multi_avg_fn(d), use_buffers=True) copies at its first update and
    lerps (torch._foreach_lerp_) after; ema_update with decay 0 then d gives the same floats."""
    net = small_net()
    net[1].eval()  # constant buffers: AveragedModel averages buffers, ema_update copies them
    ref = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    mine = averaged_copy(net)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for n in range(6):
        loss = net(torch.randn(4, 1, 5, 5)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ref.update_parameters(net)
        ema_update(mine, net, ema_decay(n, 0.99, warmup=False) if n else 0.0)
        for a, b in zip(ref.module.state_dict().values(), mine.state_dict().values()):
            assert torch.equal(a, b)
