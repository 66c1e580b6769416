"""Convolutional encoder q(z|x) and decoder p(x|z) for 8x8, 28x28, 32x32 (any size, 1 or 3 channels).

Both nets halve / double the resolution with stride-2 convolutions while the side
is even and above 4 (8 -> 4; 28 -> 14 -> 7; 32 -> 16 -> 8 -> 4), doubling the width
per level (capped at 4x).  They know nothing of bounds or likelihood families: the
encoder returns (mu, logvar) of a diagonal Gaussian, the decoder returns ``n_params``
numbers per sub-pixel, shaped (B, C, P, H, W).
"""
from __future__ import annotations

from torch import Tensor, nn


def resolution_plan(height: int, width: int) -> list[tuple[int, int]]:
    """The feature-map sizes from the input down to the bottleneck, e.g. 28 -> [(28,28),(14,14),(7,7)]."""
    sizes = [(height, width)]
    h, w = height, width
    while h % 2 == 0 and w % 2 == 0 and min(h, w) > 4:
        h, w = h // 2, w // 2
        sizes.append((h, w))
    return sizes


def _width(base: int, level: int) -> int:
    return base * min(2**level, 4)


def _block(c_in: int, c_out: int, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.SiLU()]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return layers


class Encoder(nn.Module):
    """x in [0,1] (B,C,H,W) -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, channels: int, height: int, width: int, latent_dim: int, base: int, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = resolution_plan(height, width)
        layers: list[nn.Module] = _block(channels, base, dropout)
        for level in range(1, len(sizes)):
            layers += [nn.Conv2d(_width(base, level - 1), _width(base, level), 4, stride=2, padding=1), nn.SiLU()]
            layers += _block(_width(base, level), _width(base, level), dropout)
        self.features = nn.Sequential(*layers)
        h, w = sizes[-1]
        self.head = nn.Linear(_width(base, len(sizes) - 1) * h * w, 2 * latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(2.0 * x - 1.0).flatten(1)
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class Decoder(nn.Module):
    """z (..., latent_dim) -> likelihood parameters (prod(...), C, P, H, W)."""

    def __init__(self, channels: int, height: int, width: int, latent_dim: int, base: int, n_params: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        sizes = resolution_plan(height, width)
        top = len(sizes) - 1
        self.channels, self.n_params = channels, n_params
        self.bottleneck = (_width(base, top), *sizes[-1])
        self.head = nn.Sequential(nn.Linear(latent_dim, _width(base, top) * sizes[-1][0] * sizes[-1][1]), nn.SiLU())
        layers: list[nn.Module] = _block(_width(base, top), _width(base, top), dropout)
        for level in range(top, 0, -1):
            layers += [nn.ConvTranspose2d(_width(base, level), _width(base, level - 1), 4, stride=2, padding=1), nn.SiLU()]
            layers += _block(_width(base, level - 1), _width(base, level - 1), dropout)
        layers.append(nn.Conv2d(base, channels * n_params, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        z = z.reshape(-1, z.shape[-1])
        h = self.head(z).reshape(len(z), *self.bottleneck)
        out = self.body(h)
        return out.reshape(len(z), self.channels, self.n_params, *out.shape[-2:])
