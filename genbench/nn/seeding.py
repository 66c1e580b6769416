"""Content-seeded evaluation generators: a likelihood estimate that draws noise is reproducible.

The generator's seed is a hash of the batch's bytes, so the estimate of a batch is the same on every call,
evaluations of different checkpoints on the same batch share their draws (their difference is not noise),
different batches get different draws, and the training RNG is never touched.
"""
from __future__ import annotations

import hashlib

import torch
from torch import Tensor


def content_hash(x: Tensor, nbytes: int = 8) -> int:
    """The first ``nbytes`` of sha256 over x's bytes (on the CPU, C order), as a little-endian integer."""
    digest = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).digest()
    return int.from_bytes(digest[:nbytes], "little")


def content_generator(x: Tensor, *, salt: int = 0, nbytes: int = 8, modulus: int = 2**63) -> torch.Generator:
    """A CPU generator seeded by (content_hash(x, nbytes) + salt) mod ``modulus``.

    ``salt`` separates several estimators of the same batch (and a configurable evaluation seed); the defaults
    are the diffusion families' (seed = first 8 digest bytes & (2**63 - 1)); the VAE uses 7 bytes, mod 2**62.
    """
    return torch.Generator().manual_seed((content_hash(x, nbytes) + salt) % modulus)
