"""GAN restoration by latent optimisation (Yeh et al. 2017; ``genbench.tasks.latent_fit``): MAP z under the
N(0, I) prior against the known pixels of the (EMA) generator's image, best of ``RESTARTS`` = 4 starts drawn
from the caller's generator, ``latent_fit.STEPS`` Adam steps each; denoising fits every pixel with s = sigma."""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.tasks import latent_fit
from genbench.tasks.latent_fit import COMPLETION_NOISE, restore_by_fit

RESTARTS = 4


def _restore(model, target: Tensor, known: Tensor, noise: float, generator: torch.Generator | None,
             keep_known: bool = True) -> Tensor:
    target = target.to(model.device)
    known = known.to(torch.bool).to(model.device)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    net = model.sampling_network()
    net.train(False)
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        return restore_by_fit(lambda z: (net(z) + 1) / 2,
                              lambda n: torch.randn(n, model.config.latent_dim, generator=gen).to(model.device),
                              target, known, noise, restarts=RESTARTS, keep_known=keep_known)
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    return _restore(model, x, known, COMPLETION_NOISE, generator)


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    known = torch.ones(len(y), 1, *y.shape[2:], dtype=torch.bool)
    return _restore(model, y, known, sigma, generator, keep_known=False)


def nfe() -> int:
    """Generator passes per image: one per Adam step per start, + 1 decode per start."""
    return RESTARTS * (latent_fit.STEPS + 1)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return nfe()


def denoise_nfe(model, sigma: float) -> int:
    return nfe()
