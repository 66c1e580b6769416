"""The noise-prediction U-Net of Ho et al. 2020 (appendix B), sized by its config; knows nothing of betas.

PixelCNN++-style backbone: ResNet blocks (GroupNorm, SiLU, dropout, the time embedding added after the
first convolution), self-attention at chosen resolutions and in the middle, a sinusoidal time embedding
(Vaswani et al. 2017, section 3.5) through a two-layer MLP, skip connections by concatenation.  Down-
sampling is a stride-2 convolution; up-sampling is nearest-neighbour to the size of the matching skip,
so odd sizes (28 -> 14 -> 7 -> 4 -> 7 ...) work.  Any number of channels (pixels or latents).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench.nn.layers import group_norm


@dataclass(frozen=True)
class UNetConfig:
    """in_channels: image (or latent) channels; ch: base width; ch_mult: width multiplier per level
    (one level per entry, a down-sampling between consecutive levels); num_res_blocks: ResNet blocks per
    level on the way down (one more on the way up); attn_resolutions: spatial sizes with self-attention
    (the middle always has one); dropout: in every ResNet block."""

    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    out_channels: int | None = None


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (float) time indices: [sin(t w_k), cos(t w_k)], w_k = max_period^(-k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def lowest_resolution(height: int, width: int, levels: int) -> int:
    """The spatial size of the U-Net's last level (``levels`` = len(ch_mult)): each stride-2 convolution maps
    s -> ceil(s / 2) (8 -> 4, 28 -> 14, 32 -> 16 with two levels).  The presets place attention there."""
    size = min(height, width)
    for _ in range(levels - 1):
        size = (size + 1) // 2
    return size


class ResBlock(nn.Module):
    """GN-SiLU-conv, + Linear(SiLU(temb)), GN-SiLU-dropout-conv (zero-initialised), plus a (1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb_dim, c_out)
        self.norm2, self.drop = group_norm(c_out), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the spatial positions, residual, output projection zero-initialised."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = group_norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps_theta(x_t, t): (B, C, H, W), (B,) time indices -> (B, C_out, H, W)."""

    def __init__(self, cfg: UNetConfig, image_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        size = image_size if isinstance(image_size, int) else min(image_size)
        ch, temb_dim = cfg.ch, 4 * cfg.ch
        self.temb = nn.Sequential(nn.Linear(ch, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips, c, sizes = [ch], ch, []
        for level, mult in enumerate(cfg.ch_mult):
            sizes.append(size)
            for _ in range(cfg.num_res_blocks):
                blocks = nn.ModuleList([ResBlock(c, ch * mult, temb_dim, cfg.dropout)])
                c = ch * mult
                if size in cfg.attn_resolutions:
                    blocks.append(AttnBlock(c))
                self.down.append(blocks)
                skips.append(c)
            if level != len(cfg.ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skips.append(c)
                size = (size + 1) // 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb_dim, cfg.dropout), AttnBlock(c), ResBlock(c, c, temb_dim, cfg.dropout)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.ch_mult))):
            size = sizes[level]
            for _ in range(cfg.num_res_blocks + 1):
                blocks = nn.ModuleList([ResBlock(c + skips.pop(), ch * mult, temb_dim, cfg.dropout)])
                c = ch * mult
                if size in cfg.attn_resolutions:
                    blocks.append(AttnBlock(c))
                self.up.append(blocks)
            if level != 0:
                self.up.append(nn.ModuleList([nn.Conv2d(c, c, 3, padding=1)]))  # after nearest up-sampling
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, cfg.out_channels or cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.temb(timestep_embedding(t, self.cfg.ch))
        h = self.conv_in(x)
        hs = [h]
        for blocks in self.down:
            if isinstance(blocks[0], ResBlock):
                h = blocks[0](h, temb)
                for extra in blocks[1:]:
                    h = extra(h)
            else:
                h = blocks[0](h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = blocks[0](torch.cat([h, hs.pop()], dim=1), temb)
                for extra in blocks[1:]:
                    h = extra(h)
            else:
                h = blocks[0](F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))
