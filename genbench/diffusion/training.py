"""Training of an epsilon-predicting network: Algorithm 1 of Ho et al. 2020 (pixels or latents).

    t ~ U{1..T}, eps ~ N(0, I),  gradient step on || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2

(L_simple, Ho et al. eq. 14).  The draws use the global RNG on the network's device (training randomness is
the runner's seeded stream); the caller updates its weight average afterwards.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench.nn.optim import optimiser_step as _optimiser_step

from .schedule import Schedule, q_sample

EpsNet = Callable[[Tensor, Tensor], Tensor]


def denoising_loss(net: EpsNet, schedule: Schedule, x0: Tensor) -> Tensor:
    """L_simple on a batch x0 (in the diffusion's space, e.g. [-1, 1]): t uniform over the T time indices,
    eps ~ N(0, I), mean squared error of the predicted noise."""
    t = torch.randint(0, schedule.T, (len(x0),), device=x0.device)
    eps = torch.randn_like(x0)
    return F.mse_loss(net(q_sample(schedule, x0, t, eps), t), eps)


def denoising_step(
    net: torch.nn.Module, opt: torch.optim.Optimizer, schedule: Schedule, x0: Tensor, lr: float, grad_clip: float
) -> tuple[Tensor, Tensor]:
    """One step of Algorithm 1 with learning rate ``lr`` and gradient-norm clipping at ``grad_clip`` (0 = off).
    Returns (loss, gradient norm before clipping; 0 without clipping), both detached."""
    loss = denoising_loss(net, schedule, x0)
    return optimiser_step(net, opt, loss, lr, grad_clip)


def optimiser_step(net: torch.nn.Module, opt: torch.optim.Optimizer, loss: Tensor, lr: float,
                   grad_clip: float) -> tuple[Tensor, Tensor]:
    """Back-propagate ``loss`` and take one step of ``opt`` at learning rate ``lr``, clipping the gradient norm at
    ``grad_clip`` (0 = off).  Returns (loss, gradient norm before clipping; 0 without clipping), both detached.
    The shared ``genbench.nn.optim.optimiser_step``: loss-scaled in fp16 runs, the plain step otherwise."""
    step = _optimiser_step(opt, loss, net.parameters(), grad_clip=grad_clip, lr=lr)
    return step.loss, step.grad_norm
