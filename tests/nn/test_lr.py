"""The warm-up + cosine learning-rate rule against its closed form."""
from __future__ import annotations

import math

import pytest

from genbench.nn.lr import warmup_cosine_lr


def test_linear_warmup_then_constant():
    assert warmup_cosine_lr(1.0, 0, 4) == 0.25 and warmup_cosine_lr(1.0, 3, 4) == 1.0
    assert warmup_cosine_lr(1.0, 100, 4) == 1.0
    assert warmup_cosine_lr(2e-3, 0, 0) == 2e-3  # no warm-up


def test_cosine_decays_to_ten_percent_at_the_end_and_stays():
    base, warm, total = 2e-3, 100, 2000
    assert warmup_cosine_lr(base, warm, warm, total) == pytest.approx(base)
    mid = warm + (total - warm) // 2
    assert warmup_cosine_lr(base, mid, warm, total) == pytest.approx(base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert warmup_cosine_lr(base, total, warm, total) == pytest.approx(0.1 * base)
    assert warmup_cosine_lr(base, 10 * total, warm, total) == pytest.approx(0.1 * base)
    # the warm-up is not decayed
    assert warmup_cosine_lr(base, 49, warm, total) == pytest.approx(base * 0.5)
    rates = [warmup_cosine_lr(base, s, warm, total) for s in range(warm, total)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
