"""VAE restoration by latent optimisation (``genbench.tasks.latent_fit``): MAP z under the model's prior
against the known pixels of the decoder's mean image, from a draw of q(z | observed image) (unknown pixels
shown as 0.5); denoising fits every pixel with s = sigma.  Budget: ``latent_fit.STEPS`` Adam steps, 1 start."""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.tasks import latent_fit
from genbench.tasks.latent_fit import COMPLETION_NOISE, restore_by_fit


def _restore(model, target: Tensor, known: Tensor, noise: float, generator: torch.Generator | None,
             keep_known: bool = True) -> Tensor:
    target = target.to(model.device)
    known = known.to(torch.bool).to(model.device)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    model.train(False)
    with torch.no_grad():
        mu, logvar = model.encoder(torch.where(known.expand_as(target), target, torch.full_like(target, 0.5)).clamp(0, 1))

    def draw(n: int) -> Tensor:
        eps = torch.randn(mu.shape, generator=gen).to(model.device)
        return mu + (0.5 * logvar).exp() * eps

    def decode(z: Tensor) -> Tensor:
        return model.lik.mean(model.decoder(z))

    return restore_by_fit(decode, draw, target, known, noise, prior_nll=lambda z: -model.prior.log_prob(z),
                          keep_known=keep_known)


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    return _restore(model, x, known, COMPLETION_NOISE, generator)


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    known = torch.ones(len(y), 1, *y.shape[2:], dtype=torch.bool)
    return _restore(model, y, known, sigma, generator, keep_known=False)


def nfe() -> int:
    """Decoder passes per image: forward + backward per Adam step, counted as one evaluation each step, + 1."""
    return latent_fit.STEPS + 1


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return nfe()


def denoise_nfe(model, sigma: float) -> int:
    return nfe()
