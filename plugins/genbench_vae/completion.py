"""VAE restoration by latent optimisation (``genbench.tasks.latent_fit``; the MAP objective of Yeh et al. 2017
with the VAE's prior, Kingma & Welling 2014): MAP z under the model's prior against the known pixels of the
decoder's mean image, from a draw of q(z | observed image) (unknown pixels shown as 0.5); denoising fits every
pixel with s = sigma.  Budget: ``latent_fit.STEPS`` Adam steps, 1 start."""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.tasks.latent_fit import FitProblem, complete_by_fit, denoise_by_fit, fit_nfe


def setup(model, target: Tensor, known: Tensor, generator: torch.Generator) -> FitProblem:
    """Start from a draw of q(z | observed image), decode to the likelihood's mean, the model's prior."""
    model.train(False)
    with torch.no_grad():
        mu, logvar = model.encoder(torch.where(known.expand_as(target), target, torch.full_like(target, 0.5)).clamp(0, 1))

    def draw(n: int) -> Tensor:
        eps = torch.randn(mu.shape, generator=generator).to(model.device)
        return mu + (0.5 * logvar).exp() * eps

    return FitProblem(decode=lambda z: model.lik.mean(model.decoder(z)), draw=draw,
                      prior_nll=lambda z: -model.prior.log_prob(z))


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    return complete_by_fit(setup, model, x, known, generator)


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    return denoise_by_fit(setup, model, y, sigma, generator)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    return fit_nfe(1)


def denoise_nfe(model, sigma: float) -> int:
    return fit_nfe(1)
