"""The diffusers UNet2DModel for a data spec: its blocks from the config, its canvas, padding and checks.

The U-Net halves the resolution between consecutive levels, so an image side must be a multiple of
2**(levels - 1); a side that is not (28 with three levels) is padded on the bottom/right by replicating the
border (the canvas), and samples are cropped back.  The network sees -- and is trained on -- the whole canvas.
"""
from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from genbench import DataSpec


def canvas(height: int, width: int, levels: int) -> tuple[int, int]:
    """The smallest (H', W') >= (height, width) a U-Net with ``levels`` resolutions takes."""
    m = 2 ** (levels - 1)
    return math.ceil(height / m) * m, math.ceil(width / m) * m


def head_dim(channels: list[int], attention_levels: list[int], given: int | None) -> int:
    """``given``, else one attention head at the narrowest level with attention (the middle block, at the last
    level's width, always has it), as in Ho et al.'s U-Net."""
    if given is not None:
        return given
    return min(channels[i] for i in [*attention_levels, len(channels) - 1])


def unet_kwargs(c: Any, data: DataSpec) -> dict[str, Any]:
    """UNet2DModel arguments for config ``c`` (block widths, blocks per level, attention levels, ...) on ``data``."""
    levels = len(c.block_out_channels)
    down = tuple("AttnDownBlock2D" if i in c.attention_levels else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if i in c.attention_levels else "UpBlock2D" for i in reversed(range(levels)))
    return {
        "sample_size": canvas(data.height, data.width, levels), "in_channels": data.channels,
        "out_channels": data.channels, "block_out_channels": tuple(c.block_out_channels),
        "layers_per_block": c.layers_per_block, "down_block_types": down, "up_block_types": up,
        "dropout": c.dropout, "norm_num_groups": c.norm_num_groups,
        "attention_head_dim": head_dim(list(c.block_out_channels), list(c.attention_levels), c.attention_head_dim),
    }


def build_unet(c: Any, data: DataSpec):
    from diffusers import UNet2DModel

    return UNet2DModel(**unet_kwargs(c, data))


def check_pretrained(unet, data: DataSpec, where: str) -> None:
    """A pretrained U-Net must take the data's channels and was trained at the data's size (nothing is resized)."""
    cfg = unet.config
    if cfg.in_channels != data.channels or cfg.out_channels != data.channels:
        raise ValueError(f"diffusers: the UNet2DModel in {where} maps {cfg.in_channels} to {cfg.out_channels} "
                         f"channels; the data set has {data.channels}: pick a data set with that many channels")
    size = cfg.sample_size
    if size is None:
        return
    hw = (size, size) if isinstance(size, int) else tuple(size)
    allowed = {(data.height, data.width), canvas(data.height, data.width, len(cfg.block_out_channels))}
    if hw not in allowed:
        raise ValueError(f"diffusers: the UNet2DModel in {where} was trained on {hw[0]}x{hw[1]} images; the data set's "
                         f"are {data.height}x{data.width}: pick a data set of that size (nothing is resized)")


def levels_of(unet) -> int:
    return len(unet.config.block_out_channels)


def pad(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, H, W) -> (B, C, H', W'), the border replicated on the bottom and right."""
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    return F.pad(x, (0, dw, 0, dh), mode="replicate") if dh or dw else x


def crop(x: Tensor, height: int, width: int) -> Tensor:
    return x[..., :height, :width]

