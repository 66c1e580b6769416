"""GAN restoration by latent optimisation (Yeh et al. 2017; ``genbench.tasks.latent_fit``): MAP z under the
N(0, I) prior against the known pixels of the (EMA) generator's image, best of ``RESTARTS`` = 4 starts drawn
from the caller's generator, ``latent_fit.STEPS`` Adam steps each; denoising fits every pixel with s = sigma."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genbench.tasks.latent_fit import FitProblem, complete_by_fit, denoise_by_fit, fit_nfe

RESTARTS = 4


def setup(model, target: Tensor, known: Tensor, generator: torch.Generator) -> FitProblem:
    """Starts z ~ N(0, I) from the caller's generator, decoded by the sampling (EMA) generator into [0, 1]."""
    net = model.sampling_network()
    draw: Callable[[int], Tensor] = lambda n: torch.randn(n, model.config.latent_dim,  # noqa: E731
                                                         generator=generator).to(model.device)
    return FitProblem(decode=lambda z: (net(z) + 1) / 2, draw=draw, restarts=RESTARTS, freeze=(net,))


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    return complete_by_fit(setup, model, x, known, generator)


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    return denoise_by_fit(setup, model, y, sigma, generator)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return fit_nfe(RESTARTS)


def denoise_nfe(model, sigma: float) -> int:
    return fit_nfe(RESTARTS)
