"""The device a cell runs on, the kernels it may use, and the random state it draws from.

Nothing here changes global state on import or construction: ``pick_device`` only names a
device; ``deterministic_kernels`` and ``preserved_rng`` change global settings for the
duration of a ``with`` block and put them back after.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def pick_device(name: str = "auto") -> torch.device:
    """The torch device for ``name`` (auto: CUDA when visible)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for but no CUDA device is visible; use --device cpu")
    return torch.device(name)


@contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """On CUDA, cuDNN's deterministic kernels without autotuning inside the block (restored after), so that
    a seed fixes the samples there as it does on the CPU (some cuDNN transposed-convolution kernels add with
    atomics: a GAN's draws differed between two calls without it).  Nothing changes on other devices."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def seed_everything(seed: int) -> None:
    """Seed every global generator a model may draw from: torch (CPU and every CUDA device), numpy, random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng() -> dict[str, Any]:
    """Every global random state, in a form ``torch.load(weights_only=True)`` reads back: torch's CPU
    generator, each CUDA device's (when CUDA is in use in this process), numpy's and python's."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "words": torch.tensor(words, dtype=torch.int64), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> list[str]:
    """Put back what ``capture_rng`` took; returns the names of states that could not be restored (CUDA
    states taken on a machine with other devices)."""
    skipped = []
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss_next"]))
    cuda = state.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            skipped.append("cuda")
    return skipped


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run the block and put every global random state back as it was before it."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)
