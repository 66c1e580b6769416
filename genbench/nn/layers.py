"""Small layers shared by several networks."""
from __future__ import annotations

from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm (Wu & He 2018) with up to 32 groups (the DDPM U-Net's choice), fewer when the width is not
    divisible."""
    groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)
