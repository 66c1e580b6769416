"""The Polyak (EMA) weight average: the recurrence by hand, used for nll and sampling, checkpointed."""
from __future__ import annotations

import io

import torch

from genbench.config import resolve_config
from genbench.testing import CONTRACT_SPECS, contract_batch
from genbench_pixelcnn import PixelCNN

SPEC = CONTRACT_SPECS["8x8x1-K17"]


def make(**over) -> PixelCNN:
    torch.manual_seed(0)
    return PixelCNN(resolve_config(PixelCNN, "tiny", SPEC, {"ema_decay": 0.9, "dropout": 0.2, **over}), SPEC)


def test_average_follows_the_ema_recurrence_and_scores_and_samples():
    model = make()
    x = contract_batch(SPEC, n=8)
    model.train(True)
    snaps = []
    for _ in range(3):
        model.train_step(x)
        snaps.append([p.detach().clone() for p in model.net.parameters()])
    # a_1 = theta_1 (the first update copies), a_t = d a_{t-1} + (1 - d) theta_t
    expected = snaps[0]
    for snap in snaps[1:]:
        expected = [0.9 * a + 0.1 * p for a, p in zip(expected, snap)]
    for a, e in zip(model.eval_net.parameters(), expected):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-7)
    assert not all(torch.equal(a, p) for a, p in zip(model.eval_net.parameters(), model.net.parameters()))
    assert not model.eval_net.training, "the average must not use dropout"
    model.train(False)
    with torch.no_grad():
        torch.testing.assert_close(model.nll(x), model.nll_from_logits(model.eval_net(x), x))
        assert not torch.allclose(model.nll(x), model.nll_from_logits(model.net(x), x))
    assert model.count_parameters() == sum(p.numel() for p in model.net.parameters())
    # sampling runs the average: replacing the trained net's weights by noise changes nothing
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in model.net.parameters():
            p.normal_()
    assert torch.equal(a, model.sample(4, generator=torch.Generator().manual_seed(1)))


def test_average_survives_a_checkpoint_round_trip():
    model = make()
    x = contract_batch(SPEC, n=8)
    model.train(True)
    for _ in range(2):
        model.train_step(x)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    fresh.train(False)
    model.train(False)
    with torch.no_grad():
        torch.testing.assert_close(fresh.nll(x), model.nll(x))
    assert fresh.ema_updates == 2 and "ema" in fresh.state_dict()["averaged"]
    # training on after the reload continues the same average
    for m in (model, fresh):
        m.train(True)
        torch.manual_seed(3)
        m.train_step(x)
    for a, b in zip(model.eval_net.parameters(), fresh.eval_net.parameters()):
        assert torch.equal(a, b)


def test_ema_decay_outside_zero_one_is_a_one_line_error():
    import pytest
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="ema_decay must be in"):
            make(ema_decay=bad)
