"""The networks of a variational diffusion model: the noise model eps_hat(z_t; gamma_t) and the learned schedule.

The noise model is the shared U-Net (``genbench.diffusion.unet``) conditioned on the log-SNR gamma rather than on
t (Kingma et al. 2021, Sec. 5.1: the continuous-time loss is then invariant to the schedule between its end
points), fed through the U-Net's sinusoidal embedding as 1000 (gamma - g_lo) / (g_hi - g_lo) with the fixed
reference range (g_lo, g_hi) of the schedule's initial end points (as the authors' code does).  Its input is
z_t with Fourier features sin(2^n pi z), cos(2^n pi z) appended per channel (Appendix C): they let the network
resolve the fine scale of the data's K levels near gamma_min, where q(z_t) is sharply peaked.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genbench.diffusion import MonotoneGamma, UNet, UNetConfig


def fourier_exponents(levels: int) -> tuple[int, ...]:
    """The exponents n of the features sin(2^n pi z), cos(2^n pi z): the two whose periods 2^(1-n) match
    the level spacing 2/(K-1) and twice it, n in {m - 1, m} with m = round(log2(K - 1)) ({7, 8} for K = 256)."""
    m = round(math.log2(levels - 1))
    return (m - 1, m)


class NoiseModel(nn.Module):
    """eps_hat(z; gamma): (B, C, H, W), (B,) log-SNRs -> (B, C, H, W)."""

    def __init__(self, unet_cfg: UNetConfig, image_size: tuple[int, int], gamma_range: tuple[float, float],
                 exponents: tuple[int, ...] = ()) -> None:
        super().__init__()
        channels = unet_cfg.in_channels
        self.exponents = tuple(exponents)
        self.gamma_range = (float(gamma_range[0]), float(gamma_range[1]))
        cfg = UNetConfig(
            in_channels=channels * (1 + 2 * len(self.exponents)), ch=unet_cfg.ch, ch_mult=unet_cfg.ch_mult,
            num_res_blocks=unet_cfg.num_res_blocks, attn_resolutions=unet_cfg.attn_resolutions,
            dropout=unet_cfg.dropout, out_channels=channels,
        )
        self.unet = UNet(cfg, image_size)
        self.register_buffer("freqs", torch.tensor([2.0**n * math.pi for n in self.exponents]), persistent=False)

    def features(self, z: Tensor) -> Tensor:
        """[z, sin(2^n pi z), cos(2^n pi z) for each n] along the channels (Appendix C, eq. 34)."""
        if not self.exponents:
            return z
        arg = z[:, :, None] * self.freqs.to(z.dtype)[None, None, :, None, None]  # (B, C, F, H, W)
        extra = torch.cat([torch.sin(arg), torch.cos(arg)], dim=2).flatten(1, 2)
        return torch.cat([z, extra], dim=1)

    def forward(self, z: Tensor, gamma: Tensor) -> Tensor:
        lo, hi = self.gamma_range
        t = 1000.0 * (gamma.to(z.dtype).expand(len(z)) - lo) / (hi - lo)
        return self.unet(self.features(z), t)


class VDMNet(nn.Module):
    """The trained (and weight-averaged) pair: ``eps`` the noise model, ``schedule`` gamma_eta(t)."""

    def __init__(self, eps: NoiseModel, schedule: MonotoneGamma) -> None:
        super().__init__()
        self.eps = eps
        self.schedule = schedule
