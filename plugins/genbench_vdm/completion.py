"""VDM restoration in continuous time: RePaint (Lugmayr et al. 2022) and SDEdit (Meng et al. 2022) on the
ancestral sampler's grid t_i = i / sample_T (Kingma et al. 2021 eq. 33), with the learned gamma(t).

RePaint: the unknown part of z_s comes from p(z_s | z_t) (``continuous.reverse_step``), the known part is a
fresh draw of q(z_s | x) = N(alpha_s x, sigma_s^2 I) (eq. 1); jumps back use q(z_t | z_s) = N(alpha_t/alpha_s z_s,
(sigma_t^2 - alpha_t^2/alpha_s^2 sigma_s^2) I) (eq. 2), on ``genbench.diffusion.repaint.repaint_schedule``'s
visits with the paper's r = j = 10.  At t = 0 the decoder's mode gives the levels and the known sub-pixels are
put back from the data (z_0 at gamma_0 still carries a little noise, so this is the consistency step).
SDEdit starts at the first grid time whose sigma_t / alpha_t reaches the noise (in the model's [-1, 1] units),
adding the missing variance so the start is an exact draw of q(z_t | x).
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.diffusion.continuous import alpha_sigma, decoder_mode, q_sample, reverse_step
from genbench.diffusion.repaint import repaint_nfe, repaint_schedule

RESAMPLINGS = 10
JUMP_LENGTH = 10


def _grid(model) -> tuple[Tensor, int]:
    steps = model.config.sample_T
    net = model.sampling_net
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    return net.schedule.gamma(grid.to(device=model.device, dtype=torch.float32)).double().cpu(), steps


def _randn(shape, generator) -> Tensor:
    return torch.randn(shape, generator=generator)


@torch.no_grad()
def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    net = model.sampling_net
    gammas, steps = _grid(model)
    dev = model.device
    x0 = x.to(dev) * 2 - 1
    mask = known.to(torch.bool).expand_as(x0).to(dev)
    shape, n = tuple(x0.shape), len(x0)
    z = _randn(shape, generator).to(dev)
    ts = repaint_schedule(steps, JUMP_LENGTH, RESAMPLINGS)
    for a, b in zip(ts[:-1], ts[1:]):  # RePaint index i is grid point i + 1
        ga, gb = gammas[a + 1].to(dev), gammas[b + 1].to(dev)
        if b < a:
            eps_hat = net.eps(z, torch.full((n,), float(ga), device=dev))
            unknown = reverse_step(z, eps_hat, ga, gb, _randn(shape, generator).to(dev))
            known_part = q_sample(x0, gb.float(), _randn(shape, generator).to(dev))
            z = torch.where(mask, known_part, unknown)
        else:
            (al_a, si_a), (al_b, si_b) = alpha_sigma(ga), alpha_sigma(gb)
            ratio = al_b / al_a
            var = (si_b**2 - ratio**2 * si_a**2).clamp(min=0)
            z = ratio.float() * z + var.sqrt().float() * _randn(shape, generator).to(dev)
    out = (decoder_mode(z, gammas[0].to(dev).float(), model.data.levels) + 1) / 2
    return torch.where(mask, x.to(dev), out.clamp(0, 1))


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return repaint_nfe(model.config.sample_T, JUMP_LENGTH, RESAMPLINGS)


def _start(model, sigma: float) -> int:
    gammas, steps = _grid(model)
    al, si = alpha_sigma(gammas)
    reached = torch.nonzero(si / al >= 2 * sigma)
    return int(reached[0]) if len(reached) else steps


@torch.no_grad()
def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    net = model.sampling_net
    gammas, steps = _grid(model)
    dev = model.device
    k = _start(model, sigma)
    al, si = alpha_sigma(gammas[k])
    s2 = (2 * sigma) ** 2
    extra = max(float(si**2 - al**2 * s2), 0.0)
    yy = y.to(dev) * 2 - 1
    z = float(al) * yy + extra**0.5 * _randn(tuple(yy.shape), generator).to(dev)
    n = len(yy)
    for i in range(k, 0, -1):
        g_t = torch.full((n,), float(gammas[i]), device=dev)
        eps_hat = net.eps(z, g_t)
        z = reverse_step(z, eps_hat, gammas[i].to(dev), gammas[i - 1].to(dev), _randn(tuple(yy.shape), generator).to(dev))
    return ((decoder_mode(z, gammas[0].to(dev).float(), model.data.levels) + 1) / 2).clamp(0, 1)


def denoise_nfe(model, sigma: float) -> int:
    return _start(model, sigma)
