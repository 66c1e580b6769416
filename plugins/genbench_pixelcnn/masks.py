"""Masked convolutions of PixelCNN (van den Oord et al. 2016a, sec. 3.4; 2016b, sec. 2.1-2.2).

The joint distribution is factorised in raster order, and within a pixel in
channel order R -> G -> B (2016a, eq. 1-2):

    p(x) = prod_i p(x_{i,R} | x_{<i}) p(x_{i,G} | x_{<i}, x_{i,R}) p(x_{i,B} | x_{<i}, x_{i,R}, x_{i,G}).

Spatial causality is obtained by the *shapes* of the convolutions of the
vertical/horizontal stacks (see ``network.py``); this module only handles the
one tap where the current pixel is visible: the centre tap of a horizontal
convolution and every 1x1 convolution of the horizontal stack.  There, the
feature maps are split into C contiguous groups (group c "belongs" to colour c)
and a connection from an input feature of group ``g_in`` to an output feature of
group ``g_out`` is kept iff

    mask A (first layer):      g_in <  g_out   (a colour never sees itself)
    mask B (all later layers): g_in <= g_out

(2016a, sec. 3.4, fig. 2).  For C = 1 mask A removes the centre tap entirely and
mask B keeps it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MaskType = Literal["A", "B"]


def channel_groups(n_features: int, colours: int) -> Tensor:
    """Colour group of each of ``n_features`` features: ``f * C // n`` (contiguous, near-equal blocks).

    With ``n_features == C`` this is the identity (input image channel c is group c); with
    ``n_features == C * K`` it is ``f // K`` (the K logits of colour c form group c).
    """
    if n_features < colours:
        raise ValueError(f"need at least one feature per colour: {n_features} features for {colours} colours")
    return torch.arange(n_features) * colours // n_features


def channel_mask(groups_out: Tensor, groups_in: Tensor, mask_type: MaskType) -> Tensor:
    """(out, in) 0/1 matrix: the allowed connections at the current pixel (mask A or B)."""
    if mask_type == "A":
        return (groups_in[None, :] < groups_out[:, None]).float()
    if mask_type == "B":
        return (groups_in[None, :] <= groups_out[:, None]).float()
    raise ValueError(f"mask type must be 'A' or 'B', got {mask_type!r}")


class MaskedConv2d(nn.Conv2d):
    """A Conv2d whose weight is multiplied by a fixed 0/1 mask (a non-persistent buffer) in every call."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], mask: Tensor) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(self.weight.shape)}")
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)
        self.frozen_weight: Tensor | None = None  # set by ``freeze_masks`` while sampling

    def forward(self, x: Tensor) -> Tensor:
        weight = self.frozen_weight if self.frozen_weight is not None else self.weight * self.mask
        return F.conv2d(x, weight, self.bias)


@contextmanager
def freeze_masks(module: nn.Module) -> Iterator[None]:
    """Within the block, every MaskedConv2d of ``module`` uses its masked weight computed once
    (thousands of small calls while sampling); the weights must not change inside the block."""
    convs = [m for m in module.modules() if isinstance(m, MaskedConv2d)]
    try:
        with torch.no_grad():
            for conv in convs:
                conv.frozen_weight = conv.weight * conv.mask
        yield
    finally:
        for conv in convs:
            conv.frozen_weight = None


def horizontal_conv(
    in_channels: int, out_channels: int, kernel_size: int, groups_in: Tensor, groups_out: Tensor, mask_type: MaskType
) -> MaskedConv2d:
    """A 1 x (k//2 + 1) convolution over the current row: columns j-k//2 .. j (the input is padded left).

    Taps left of the current pixel see every channel; the last tap (the current pixel) is channel-masked.
    """
    width = kernel_size // 2 + 1
    mask = torch.ones(out_channels, in_channels, 1, width)
    mask[:, :, 0, -1] = channel_mask(groups_out, groups_in, mask_type)
    return MaskedConv2d(in_channels, out_channels, (1, width), mask)


def pointwise_conv(in_channels: int, out_channels: int, groups_in: Tensor, groups_out: Tensor) -> MaskedConv2d:
    """A 1x1 convolution at the current pixel with channel mask B (used inside the horizontal stack and head)."""
    mask = channel_mask(groups_out, groups_in, "B")[:, :, None, None]
    return MaskedConv2d(in_channels, out_channels, (1, 1), mask)
