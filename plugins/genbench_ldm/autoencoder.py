"""The first stage: a convolutional autoencoder with a diagonal Gaussian posterior (the "KL-f" autoencoder of
Rombach et al. 2022, section 3.1 and appendix G), scaled down for small images.

Encoder: conv, then per level a residual block and a stride-2 convolution (log2 f of them), a residual block,
GroupNorm-SiLU-conv to 2 * z_channels maps: the mean and log-variance of q(z | x) = N(mu, diag sigma^2).
Decoder: the mirror image with nearest-neighbour up-sampling back to the exact encoder sizes (so odd sizes like
28 -> 14 -> 7 round-trip), ending in ``n_params`` outputs per sub-pixel: the parameters of the discrete
likelihood p(x | z) (``genbench.nn.discrete``).  No attention: at 8x8..32x32 inputs the latents are at most 8x8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from genbench.nn.layers import group_norm


@dataclass(frozen=True)
class AutoencoderConfig:
    """in_channels: image channels; f: spatial down-sampling factor (a power of two); z_channels: latent
    channels; ch: base width (doubled per level, at most 4x); res_blocks: residual blocks per level;
    n_params: decoder outputs per sub-pixel (the likelihood's parameters)."""

    in_channels: int = 1
    f: int = 4
    z_channels: int = 4
    ch: int = 32
    res_blocks: int = 1
    n_params: int = 2

    @property
    def levels(self) -> int:
        """Number of down-samplings, log2 f."""
        n = int(round(math.log2(self.f)))
        if self.f < 1 or 2**n != self.f:
            raise ValueError(f"down-sampling factor f must be a power of two, got {self.f}")
        return n

    def widths(self) -> list[int]:
        return [self.ch * min(2**i, 4) for i in range(self.levels + 1)]


def spatial_sizes(size: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """Sizes after each stride-2 (kernel 3, padding 1) convolution: s -> ceil(s / 2); ``levels + 1`` entries."""
    out = [size]
    for _ in range(levels):
        h, w = out[-1]
        out.append(((h + 1) // 2, (w + 1) // 2))
    return out


class Block(nn.Module):
    """GN-SiLU-conv, GN-SiLU-conv (zero-initialised), plus a (1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(group_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
                                  group_norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """x (B, C, H, W) in [-1, 1] -> (mean, logvar) of q(z | x), each (B, z_channels, H / f, W / f)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        widths = cfg.widths()
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)]
        c = widths[0]
        for i in range(cfg.levels):
            for _ in range(cfg.res_blocks):
                layers.append(Block(c, widths[i]))
                c = widths[i]
            layers.append(nn.Conv2d(c, widths[i + 1], 3, stride=2, padding=1))
            c = widths[i + 1]
        for _ in range(cfg.res_blocks):
            layers.append(Block(c, c))
        layers += [group_norm(c), nn.SiLU(), nn.Conv2d(c, 2 * cfg.z_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)  # as Rombach et al.'s DiagonalGaussianDistribution


class Decoder(nn.Module):
    """z (B, z_channels, h, w) -> likelihood parameters (B, C, n_params, H, W)."""

    def __init__(self, cfg: AutoencoderConfig, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.sizes = spatial_sizes(image_size, cfg.levels)
        widths = cfg.widths()
        c = widths[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = nn.Sequential(*[Block(c, c) for _ in range(cfg.res_blocks)])
        self.ups = nn.ModuleList()
        for i in reversed(range(cfg.levels)):
            blocks: list[nn.Module] = [nn.Conv2d(c, widths[i], 3, padding=1)]  # after nearest up-sampling
            c = widths[i]
            blocks += [Block(c, c) for _ in range(cfg.res_blocks)]
            self.ups.append(nn.Sequential(*blocks))
        self.out = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, cfg.in_channels * cfg.n_params, 3, padding=1))

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for j, up in enumerate(self.ups):
            h = up(F.interpolate(h, size=self.sizes[self.cfg.levels - 1 - j], mode="nearest"))
        out = self.out(h)
        b, _, hh, ww = out.shape
        return out.reshape(b, self.cfg.in_channels, self.cfg.n_params, hh, ww)


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per image (B,), nats: the autoencoder's regulariser (Kingma &
    Welling 2014, appendix B), weighted by a small ``kl_weight`` in the first-stage loss."""
    return 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def gaussian_neg_entropy(logvar: Tensor) -> Tensor:
    """E_q[log q(z | x)] = -sum_d 0.5 (log(2 pi) + 1 + logvar_d) per image (B,), nats (closed form)."""
    return -0.5 * (math.log(2 * math.pi) + 1.0 + logvar).flatten(1).sum(1)
