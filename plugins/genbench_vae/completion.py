"""VAE restoration by latent optimisation (``genbench.tasks.latent_fit``; the MAP objective of Yeh et al. 2017
with the VAE's prior, Kingma & Welling 2014): MAP z under the model's prior against the known pixels of the
decoder's mean image, from a draw of q(z | observed image) (unknown pixels shown as 0.5); denoising fits every
pixel with s = sigma.  Budget: ``latent_fit.STEPS`` Adam steps, 1 start.

Completion by importance resampling instead (``--task-set pool=M``, M > 0): the decoder factorises over the pixels
given z, so the model's exact conditional is p(u | k) = E_{p(z | k)} p(u | z); M prior draws per call weighed by
the decoder's likelihood of the known pixels, one kept per image and decoded as the samples are
(``genbench.tasks.pool_resampling``: consistent as M grows, a draw rather than the MAP point)."""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.tasks.latent_fit import FitProblem, complete_by_fit, denoise_by_fit, fit_nfe
from genbench.tasks.options import TaskOption, option
from genbench.tasks.pool_resampling import choose_from_pool, pool_log_weights

#: M, prior draws per call of importance-resampling completion (0: the MAP latent fit)
POOL = 0
TASK_OPTIONS = {"pool": TaskOption("VAE completion by importance resampling: prior draws per call weighed by the "
                                   "decoder's likelihood of the known pixels (0: MAP latent fit)", 16384, minimum=0)}


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


@torch.no_grad()
def importance_complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None, pool: int) -> Tensor:
    """One completion per image by importance resampling over ``pool`` prior draws (module text): images in
    [0, 1], the known pixels the data's."""
    model.train(False)
    x, known = x.to(model.device), known.to(torch.bool).to(model.device)
    z = model.prior.sample(pool, generator).to(model.device)
    levels = model.data.to_levels(x)
    chunk = model.decode_chunk(1)
    logw = torch.cat([pool_log_weights(model.lik, model.decoder(z[i : i + chunk]), levels, known)
                      for i in range(0, pool, chunk)], dim=1)
    kept = choose_from_pool(model, logw, generator, "vae completion (prior draws)")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    image = model.decode(z[kept.to(z.device)], gen)
    return torch.where(known.expand_as(x), x, image.clamp(0, 1))


def complete(model, x: Tensor, known: Tensor, generator: torch.Generator | None) -> Tensor:
    pool = option(model, "pool", POOL)
    if pool > 0:
        return importance_complete(model, x, known, generator, pool)
    return complete_by_fit(setup, model, x, known, generator)


def details(model, capability: str, known_mask: Tensor | None = None) -> dict[str, object]:
    """What the task rows record: the completion's method and, for importance resampling, the pool."""
    pool = option(model, "pool", POOL)
    if capability == "complete" and pool > 0:
        return {"method": "importance resampling over prior draws (pixel likelihood of the known part)", "pool": pool,
                "decode": model.sampler_name(None)}
    return {"method": "MAP latent fit (Adam)"}


def denoise(model, y: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    return denoise_by_fit(setup, model, y, sigma, generator)


def completion_nfe(model, known_mask: Tensor | None = None) -> int:
    """The latent fit's decoder passes; for importance resampling the pool's decoder passes (what one image
    alone costs: a call's images share them) and the decode."""
    pool = option(model, "pool", POOL)
    return pool + 1 if pool > 0 else fit_nfe(1)


def denoise_nfe(model, sigma: float) -> int:
    return fit_nfe(1)
