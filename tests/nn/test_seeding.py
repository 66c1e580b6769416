"""Content-seeded evaluation generators: same bytes, same draws; other bytes or salt, other draws."""
from __future__ import annotations

import hashlib

import torch

from genbench.nn.seeding import content_generator, content_hash


def test_the_seed_is_the_documented_hash():
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 11
    digest = hashlib.sha256(x.numpy().tobytes()).digest()
    assert content_hash(x) == int.from_bytes(digest[:8], "little")
    assert content_generator(x).initial_seed() == int.from_bytes(digest[:8], "little") & (2**63 - 1)
    seed = (int.from_bytes(digest[:7], "little") + 5) % 2**62
    assert content_generator(x, salt=5, nbytes=7, modulus=2**62).initial_seed() == seed


def test_same_content_same_draws_other_content_or_salt_other_draws():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = torch.randn(5, generator=content_generator(x))
    assert torch.equal(a, torch.randn(5, generator=content_generator(x.clone())))
    strided = x.transpose(2, 3).contiguous().transpose(2, 3)  # same values, another memory layout
    assert not strided.is_contiguous() and torch.equal(a, torch.randn(5, generator=content_generator(strided)))
    assert not torch.equal(a, torch.randn(5, generator=content_generator(x[:3])))
    assert not torch.equal(a, torch.randn(5, generator=content_generator(x, salt=1)))
    state = torch.get_rng_state()
    content_generator(x)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
