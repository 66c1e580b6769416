"""Masks of the completion tasks: which sub-pixels of an image are known (True) and which are to be restored.

A mask is named on the command line (``--mask``): ``center`` (the central half-size square unknown),
``left-half``, ``bottom-half`` (the known top half is a raster-order prefix: autoregressive models complete it
exactly), ``right-half``, ``top-half``, ``border`` (outpainting: a frame of a quarter of each side unknown, the
centre known) or ``random-pixels:P`` (each pixel unknown with probability P, drawn per image from the task's
seed).  ``known_mask`` returns a bool tensor (n, 1, H, W): a pixel's channels are known or unknown together.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MASK_NAMES", "MaskError", "MaskSpec", "parse_mask", "is_raster_prefix"]

MASK_NAMES = ("center", "left-half", "right-half", "top-half", "bottom-half", "border", "random-pixels:P")


class MaskError(ValueError):
    """A mask string that does not name a mask; the message is one line saying what to write instead."""


@dataclass(frozen=True)
class MaskSpec:
    """A parsed ``--mask``: its name and, for ``random-pixels``, the unknown fraction."""

    name: str
    fraction: float | None = None

    @property
    def label(self) -> str:
        """The mask as written on the command line (and in rows)."""
        return f"{self.name}:{self.fraction:g}" if self.fraction is not None else self.name

    def known_mask(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, 1, H, W) bool, True where the pixel is known; random masks draw from ``generator`` (CPU)."""
        h, w = height, width
        known = torch.ones(n, 1, h, w, dtype=torch.bool)
        if self.name == "center":
            top, left = h // 4, w // 4
            known[..., top : top + (h + 1) // 2, left : left + (w + 1) // 2] = False
        elif self.name == "left-half":
            known[..., :, : w // 2] = False
        elif self.name == "right-half":
            known[..., :, w // 2 :] = False
        elif self.name == "top-half":
            known[..., : h // 2, :] = False
        elif self.name == "bottom-half":
            known[..., h // 2 :, :] = False
        elif self.name == "border":
            bh, bw = max(1, h // 4), max(1, w // 4)
            known[...] = False
            known[..., bh : h - bh, bw : w - bw] = True
        elif self.name == "random-pixels":
            assert self.fraction is not None
            known = torch.rand(n, 1, h, w, generator=generator) >= self.fraction
        else:  # parse_mask admits only the names above
            raise MaskError(f"unknown mask {self.name!r}")
        return known


def parse_mask(text: str) -> MaskSpec:
    """``--mask`` text -> MaskSpec; a bad one raises MaskError with one line naming the choices."""
    choices = ", ".join(MASK_NAMES)
    raw = (text or "").strip().lower()
    name, sep, arg = raw.partition(":")
    if name == "random-pixels":
        if not sep or not arg:
            raise MaskError(f"--mask random-pixels needs the unknown fraction, e.g. random-pixels:0.5 (got {text!r})")
        try:
            fraction = float(arg)
        except ValueError:
            raise MaskError(f"--mask random-pixels:P needs a number P in (0, 1), got {arg!r}") from None
        if not 0.0 < fraction < 1.0:
            raise MaskError(f"--mask random-pixels:P needs P strictly between 0 and 1, got {fraction:g}")
        return MaskSpec("random-pixels", fraction)
    if name in MASK_NAMES and not sep:
        return MaskSpec(name)
    if name in MASK_NAMES:
        raise MaskError(f"--mask {name} takes no argument (got {text!r}); choices: {choices}")
    import difflib

    close = difflib.get_close_matches(name, [m.split(":")[0] for m in MASK_NAMES], n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise MaskError(f"unknown --mask {text!r}{hint} Choices: {choices}")


def is_raster_prefix(known: Tensor) -> bool:
    """Whether every image's known sub-pixels come first in raster order (row by row, channels inside a pixel):
    what an autoregressive model conditions on exactly.  ``known`` (n, 1 or C, H, W) bool."""
    flat = known.permute(0, 2, 3, 1).reshape(len(known), -1).to(torch.int8)  # raster order, channels innermost
    # a prefix is non-increasing along the raster order: no unknown (0) followed by a known (1)
    return bool((flat[:, 1:] <= flat[:, :-1]).all())
