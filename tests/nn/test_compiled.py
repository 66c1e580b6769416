"""genbench.nn.compiled: the frozen compiled copy computes what the eager network computes (within the rounding of
fused kernels), for its first input shape only, never with gradients, and falls back to eager when compiling
fails.  One real compile of a small GroupNorm-SiLU-conv block (a few seconds); the rest swap torch.compile out."""
from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import genbench.nn.compiled as compiled_mod
from genbench.nn.compiled import FrozenCompiled


def block() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.GroupNorm(4, 8), nn.SiLU(), nn.Conv2d(8, 8, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(8, 4, 1)).eval()


def test_a_real_compile_matches_eager_and_serves_only_its_first_shape():
    net = block()
    frozen = FrozenCompiled(net)
    x = torch.randn(16, 8, 8, 8)
    with torch.inference_mode():
        want = net(x)
        got = frozen(x)
        again = frozen(x * 2)
        other = frozen(torch.randn(3, 8, 8, 8))  # another batch size: eager, no second compile
    if not frozen.compiled:
        pytest.skip(f"torch.compile unavailable here: {frozen.failed}")
    # fp32: fused kernels reorder sums; the difference is rounding (scale of the output ~1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, net(x * 2).detach(), rtol=1e-4, atol=1e-5)
    assert frozen.calls == 2 and other.shape == (3, 4, 8, 8)
    assert frozen.compile_seconds is not None and frozen.compile_seconds > 0
    # a frozen copy: later changes of the original's weights do not reach it
    with torch.no_grad():
        net[2].weight.add_(1.0)
    with torch.inference_mode():
        torch.testing.assert_close(frozen(x), want, rtol=1e-4, atol=1e-5)


class Recorder:
    """Stands in for torch.compile: records the calls and returns the module itself (or raises)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.options, self.calls = fail, None, 0

    def __call__(self, module, **kwargs):
        self.options = kwargs

        def run(*args):
            self.calls += 1
            if self.fail:
                raise RuntimeError("InductorError: no working C++ compiler\nmore detail")
            return module(*args)

        return run


def test_it_compiles_with_frozen_weights_and_never_with_gradients(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(compiled_mod.torch, "compile", rec)
    net = block()
    frozen = FrozenCompiled(net)
    assert rec.options == {"options": {"freezing": True}, "dynamic": False}
    assert not any(p.requires_grad for p in frozen.eager.parameters())
    assert all(p.requires_grad for p in net.parameters())  # the original is untouched
    assert [n for n, _ in frozen.named_children()] == ["eager"]  # parameters once in its state
    x = torch.randn(2, 8, 4, 4)
    frozen(x)  # gradients enabled: the eager copy
    assert rec.calls == 0
    with torch.no_grad():
        frozen(x)
        frozen(x)
    assert rec.calls == 2 and frozen.calls == 2


def test_a_failing_compile_warns_once_and_samples_eagerly(monkeypatch, caplog):
    monkeypatch.setattr(compiled_mod.torch, "compile", Recorder(fail=True))
    net = block()
    frozen = FrozenCompiled(net)
    x = torch.randn(2, 8, 4, 4)
    with caplog.at_level(logging.WARNING, logger="genbench"), torch.inference_mode():
        outs = [frozen(x) for _ in range(3)]
        want = net(x)
    assert not frozen.compiled and frozen.failed == "RuntimeError: InductorError: no working C++ compiler"
    assert frozen.compile_seconds is None and frozen.calls == 0
    assert sum("compiling the sampler's network failed" in r.message for r in caplog.records) == 1
    for out in outs:
        torch.testing.assert_close(out, want)


def test_compile_seconds_is_the_first_call_less_the_second():
    frozen = FrozenCompiled.__new__(FrozenCompiled)
    frozen._first_seconds = []
    assert frozen.compile_seconds is None
    frozen._first_seconds = [5.0]
    assert frozen.compile_seconds == 5.0
    frozen._first_seconds = [5.0, 0.25]
    assert frozen.compile_seconds == 4.75
