"""Algorithm 1: the draws (t, then eps, from the global RNG) and the loss, and one optimiser step."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.diffusion.schedule import Schedule, q_sample
from genbench.diffusion.training import denoising_loss, denoising_step
from genbench.diffusion.unet import UNet, UNetConfig


def test_loss_is_l_simple_with_t_then_eps_drawn():
    s = Schedule.make("linear", 50)
    x0 = torch.rand(6, 1, 4, 4) * 2 - 1
    seen = {}

    def net(xt, t):
        seen["xt"], seen["t"] = xt, t
        return torch.zeros_like(xt)

    torch.manual_seed(3)
    loss = denoising_loss(net, s, x0)
    torch.manual_seed(3)
    t = torch.randint(0, 50, (6,))
    eps = torch.randn_like(x0)
    assert torch.equal(seen["t"], t) and torch.equal(seen["xt"], q_sample(s, x0, t, eps))
    assert torch.equal(loss, F.mse_loss(torch.zeros_like(eps), eps))


def test_step_sets_the_rate_clips_and_moves_the_weights():
    torch.manual_seed(0)
    net = UNet(UNetConfig(in_channels=1, ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), dropout=0.0), 4)
    opt = torch.optim.Adam(net.parameters(), lr=1.0)
    before = [p.clone() for p in net.parameters()]
    loss, gnorm = denoising_step(net, opt, Schedule.make("linear", 20), torch.rand(8, 1, 4, 4) * 2 - 1, 1e-3, 1.0)
    assert opt.param_groups[0]["lr"] == 1e-3
    assert float(loss) > 0 and float(gnorm) > 0 and not loss.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    _, gnorm0 = denoising_step(net, opt, Schedule.make("linear", 20), torch.rand(8, 1, 4, 4) * 2 - 1, 1e-3, 0.0)
    assert float(gnorm0) == 0.0  # no clipping, no norm
