"""The U-Net keeps the input's shape for every supported size and channel count."""
from __future__ import annotations

import pytest
import torch

from genbench.diffusion.unet import UNet, UNetConfig, lowest_resolution, timestep_embedding


@pytest.mark.parametrize(
    "channels,size,ch_mult,attn",
    [
        (1, 8, (1, 2), (4,)),
        (1, 8, (1, 2, 2), (2,)),
        (1, 28, (1, 2, 2), (7,)),
        (1, 28, (1, 2, 2, 2), (4,)),  # 28 -> 14 -> 7 -> 4: odd sizes come back up to the skips' sizes
        (3, 32, (1, 2, 2, 2), (16,)),
        (4, 7, (1, 2), (4,)),  # latent-sized inputs
    ],
)
def test_unet_keeps_shape(channels, size, ch_mult, attn):
    net = UNet(UNetConfig(in_channels=channels, ch=16, ch_mult=ch_mult, num_res_blocks=1, attn_resolutions=attn,
                          dropout=0.1), size)
    x = torch.randn(3, channels, size, size)
    out = net(x, torch.tensor([0, 10, 999]))
    assert out.shape == x.shape
    assert any(type(m).__name__ == "AttnBlock" for m in net.modules())


def test_unet_output_starts_at_zero_and_depends_on_time():
    """The output convolution is zero-initialised (eps_theta = 0 at start); after perturbing it, the output
    depends on both x and t."""
    torch.manual_seed(0)
    net = UNet(UNetConfig(in_channels=1, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0), 8)
    x = torch.randn(2, 1, 8, 8)
    assert torch.all(net(x, torch.tensor([1, 2])) == 0)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    a, b = net(x, torch.tensor([1, 1])), net(x, torch.tensor([500, 500]))
    assert not torch.allclose(a, b)


def test_timestep_embedding_is_sinusoidal():
    emb = timestep_embedding(torch.tensor([0.0, 3.0]), 8)
    assert emb.shape == (2, 8)
    assert torch.allclose(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(4) / 4)
    assert torch.allclose(emb[1, :4], torch.sin(3 * freqs)) and torch.allclose(emb[1, 4:], torch.cos(3 * freqs))


def test_lowest_resolution_follows_the_stride_two_convolutions():
    assert lowest_resolution(8, 8, 2) == 4 and lowest_resolution(28, 28, 2) == 14 and lowest_resolution(32, 32, 2) == 16
    assert lowest_resolution(28, 28, 4) == 4 and lowest_resolution(7, 9, 2) == 4 and lowest_resolution(8, 8, 1) == 8
