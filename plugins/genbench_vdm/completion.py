"""VDM restoration in continuous time: RePaint (Lugmayr et al. 2022) and SDEdit (Meng et al. 2022) on the
ancestral sampler's grid t_i = i / sample_T (Kingma et al. 2021 eq. 33), with the learned gamma(t).

RePaint: the unknown part of z_s comes from p(z_s | z_t) (``continuous.reverse_step``), the known part is a
fresh draw of q(z_s | x) = N(alpha_s x, sigma_s^2 I) (eq. 1); jumps back use q(z_t | z_s) = N(alpha_t/alpha_s z_s,
(sigma_t^2 - alpha_t^2/alpha_s^2 sigma_s^2) I) (eq. 2), on ``genbench.diffusion.repaint.repaint_schedule``'s
visits with the paper's r = j = 10 by default (``--task-set resamplings=R --task-set jump_length=J``,
``genbench.tasks.options``).  At t = 0 the decoder's mode gives the levels and the known sub-pixels are
put back from the data (z_0 at gamma_0 still carries a little noise, so this is the consistency step).
Colourisation is the same loop with the grey axis of RGB as the known part (as DDPM's, ``genbench_ddpm.completion``):
merge(a, b) = P a + (I - P) b with P the channel mean broadcast over channels, an orthogonal projection; q and the
jumps are isotropic (z_t = alpha_t x + sigma_t eps per coordinate), so replacing P z_t by a draw of q(P z_t | P x)
is the replacement of a known region in a rotated basis.  The consistency step at t = 0 puts the grey back
(out + grey - mean_c(out)) after the decoder's mode.
SDEdit starts at the first grid time whose sigma_t / alpha_t reaches the noise (in the model's [-1, 1] units),
adding the missing variance so the start is an exact draw of q(z_t | x).
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.diffusion.continuous import alpha_sigma, decoder_mode, q_sample, reverse_step
from genbench.diffusion.repaint import Merge, grey_merge, mask_merge, repaint_nfe, repaint_schedule
from genbench.tasks.options import REPAINT_OPTIONS, repaint_details, repaint_options

RESAMPLINGS = 10
JUMP_LENGTH = 10
TASK_OPTIONS = REPAINT_OPTIONS


def repaint_settings(model) -> tuple[int, int]:
    """(r, j): the ``--task-set`` values the model was given, else ``RESAMPLINGS`` and ``JUMP_LENGTH``."""
    return repaint_options(model, RESAMPLINGS, JUMP_LENGTH)


def details(model, capability: str, known_mask: Tensor | None = None) -> dict[str, object]:
    """What the task rows record: the method, and RePaint's r and j for completion and colourisation."""
    return repaint_details(capability, repaint_settings(model), "RePaint", "SDEdit")


def _grid(model) -> tuple[Tensor, int]:
    steps = model.config.sample_T
    net = model.sampling_net
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    return net.schedule.gamma(grid.to(device=model.device, dtype=torch.float32)).double().cpu(), steps


def _randn(shape, generator) -> Tensor:
    return torch.randn(shape, generator=generator)


def _repaint(model, x0: Tensor, merge: Merge, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """RePaint on the grid from ``x0`` ([-1, 1]; its known part as ``merge`` reads it): (z_0, gamma_0)."""
    net = model.sampling_net
    gammas, steps = _grid(model)
    dev = model.device
    shape, n = tuple(x0.shape), len(x0)
    z = _randn(shape, generator).to(dev)
    r, j = repaint_settings(model)
    ts = repaint_schedule(steps, j, r)
    for a, b in zip(ts[:-1], ts[1:]):  # RePaint index i is grid point i + 1
        ga, gb = gammas[a + 1].to(dev), gammas[b + 1].to(dev)
        if b < a:
            eps_hat = net.eps(z, torch.full((n,), float(ga), device=dev))
            unknown = reverse_step(z, eps_hat, ga, gb, _randn(shape, generator).to(dev))
            known_part = q_sample(x0, gb.float(), _randn(shape, generator).to(dev))
            z = merge(known_part, unknown)
        else:
            (al_a, si_a), (al_b, si_b) = alpha_sigma(ga), alpha_sigma(gb)
            ratio = al_b / al_a
            var = (si_b**2 - ratio**2 * si_a**2).clamp(min=0)
            z = ratio.float() * z + var.sqrt().float() * _randn(shape, generator).to(dev)
    return z, gammas[0].to(dev).float()


@torch.no_grad()
def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    """Draws of p(x | known sub-pixels of ``x``) in [0, 1]; known sub-pixels come back exactly."""
    dev = model.device
    x0 = x.to(dev) * 2 - 1
    mask = known.to(torch.bool).expand_as(x0).to(dev)
    z, gamma_0 = _repaint(model, x0, mask_merge(mask), generator)
    out = (decoder_mode(z, gamma_0, model.data.levels) + 1) / 2
    return torch.where(mask, x.to(dev), out.clamp(0, 1))


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    r, j = repaint_settings(model)
    return repaint_nfe(model.config.sample_T, j, r)


@torch.no_grad()
def colourise(model, grey: Tensor, generator: torch.Generator | None) -> Tensor:
    """RGB draws whose channel mean is ``grey`` (n, 1, H, W) in [0, 1] (up to the clamp to [0, 1]): RePaint
    with the grey axis as the known part, then the grey put back after the decoder's mode."""
    dev = model.device
    g = grey.to(dev)
    x0 = (g * 2 - 1).expand(len(g), model.data.channels, *g.shape[2:]).contiguous()
    z, gamma_0 = _repaint(model, x0, grey_merge, generator)
    out = (decoder_mode(z, gamma_0, model.data.levels) + 1) / 2
    return grey_merge(g, out).clamp(0, 1)


def colourise_nfe(model) -> int:
    """Colourisation is RePaint with the grey axis known: the same network evaluations as a completion."""
    return completion_nfe(model)


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
