"""DCGAN-style generator and discriminator (Radford et al. 2016) for small images.

Both networks work on a resolution ladder ``base -> 2 base -> ... -> H``: the base
side is found by halving the image side while it stays even and >= 4 after halving
(8 -> 4, 28 -> 7, 32 -> 4), so 8x8, 28x28 and 32x32 all work with 1, 2 and 3
up/down-sampling stages.

Generator (DCGAN, Sec. 3 "architecture guidelines"): a projection of z to a
``base x base`` feature map, then fractionally strided convolutions (ConvTranspose
4x4, stride 2) that halve the channel count while doubling the side, each
followed by BatchNorm and ReLU; a 3x3 convolution to the image channels and tanh
output in [-1, 1].

Discriminator (DCGAN strided convolutions + LeakyReLU(0.1), no BatchNorm; the
3x3 / 4x4-stride-2 pairs of the "standard CNN" of Miyato et al. 2018, Table 3):
every convolution and the final linear layer are wrapped in spectral
normalisation (Miyato et al. 2018, eq. 8: W_SN = W / sigma(W), sigma estimated by
one power iteration per training forward pass), which makes each layer, and so D,
1-Lipschitz up to the estimate of sigma.  D returns one unbounded logit per image.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def ladder(height: int, width: int) -> tuple[int, int, int]:
    """(base_height, base_width, stages): sides halved ``stages`` times while even and >= 4 after halving."""
    stages = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, stages = height // 2, width // 2, stages + 1
    if stages == 0:
        raise ValueError(f"GAN networks need an even image side >= 8 to up-sample, got {height}x{width}")
    return height, width, stages


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, C, H, W) in [-1, 1] (tanh), DCGAN-style."""

    def __init__(self, latent_dim: int, channels: int, height: int, width: int, width_mult: int = 64) -> None:
        super().__init__()
        h0, w0, stages = ladder(height, width)
        c = width_mult * 2**stages
        self.latent_dim = latent_dim
        self.base = (c, h0, w0)
        # projection of z (DCGAN's first layer "could be called fully connected")
        self.project = nn.Sequential(nn.Linear(latent_dim, c * h0 * w0, bias=False))
        self.project_norm = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        for _ in range(stages):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(len(z), *self.base)
        return self.to_image(self.blocks(self.project_norm(h)))


class Discriminator(nn.Module):
    """image (B, C, H, W) in [-1, 1] -> logit (B,); spectral norm on every weight layer if ``sn``."""

    def __init__(self, channels: int, height: int, width: int, width_mult: int = 64, sn: bool = True,
                 slope: float = 0.1) -> None:
        super().__init__()
        h0, w0, stages = ladder(height, width)
        wrap = spectral_norm if sn else (lambda m: m)
        c = width_mult
        layers: list[nn.Module] = [wrap(nn.Conv2d(channels, c, 3, padding=1)), nn.LeakyReLU(slope, inplace=True)]
        for _ in range(stages):
            layers += [
                wrap(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)), nn.LeakyReLU(slope, inplace=True),
                wrap(nn.Conv2d(2 * c, 2 * c, 3, padding=1)), nn.LeakyReLU(slope, inplace=True),
            ]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = wrap(nn.Linear(c * h0 * w0, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


def _dcgan_init(m: nn.Module) -> None:
    """DCGAN Sec. 4: weights from N(0, 0.02); BatchNorm scale from N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
