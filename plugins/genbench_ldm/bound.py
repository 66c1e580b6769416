"""The latent-diffusion bound on -log P(x) of discrete images, in nats per image (Vahdat et al. 2021, LSGM eq. 3-4).

For any encoder q(z | x), decoder mass p(x | z) and prior density p(z) (Kingma & Welling 2014, eq. 3):

    -log P(x) <= E_q[-log p(x | z)]      reconstruction (>= 0: a mass over the K levels)
               + E_q[ log q(z | x)]      negative entropy of the posterior (closed form)
               + E_q[-log p(z)]          cross-entropy of the posterior under the prior.

The prior is the diffusion model on the scaled latents u = s z (Rombach et al. 2022 section 4.3.2, s = 1 / std of
the first batch's latents).  Its density on z follows by the change of variables p_z(z) = s^d p_u(s z), d the
number of latent dimensions, so

    -log p_z(z) = -log p_u(s z) - d log s <= VLB_u(s z) - d log s,

with VLB_u the diffusion's bound on a continuous u (``genbench.diffusion.vlb`` with the Gaussian L_0 of
``genbench.diffusion.decoders.gaussian_nll``).  The sum of the last two terms is an estimate of
KL(q(z | x) || p_z) >= 0 plus the diffusion's own bound gap; every term is estimated with one z ~ q per image
(and the diffusion's stratified draws of t), so the total is an unbiased estimate of a valid bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

TERMS = ("reconstruction", "neg_entropy", "latent_cross_entropy")


@dataclass(frozen=True)
class BoundTerms:
    """The three terms per image (B,), nats, float64; ``log_det`` is the -d log s inside ``latent_cross_entropy``."""

    reconstruction: Tensor
    neg_entropy: Tensor
    latent_cross_entropy: Tensor
    log_det: Tensor

    @property
    def total(self) -> Tensor:
        return self.reconstruction + self.neg_entropy + self.latent_cross_entropy

    def means(self) -> dict[str, float]:
        """Batch means of every term and the total (nats per image)."""
        out = {k: float(getattr(self, k).mean()) for k in TERMS}
        out["log_det"] = float(self.log_det.mean())
        out["total"] = float(self.total.mean())
        return out


def scaled_latent_nll(latent_vlb: Tensor, scale: float, latent_dims: int) -> Tensor:
    """-log p_z(z) bound from the diffusion's bound on u = s z: VLB_u(s z) - d log s (change of variables)."""
    return latent_vlb - latent_dims * math.log(scale)


def combine(reconstruction: Tensor, neg_entropy: Tensor, latent_vlb: Tensor, scale: float, latent_dims: int) -> BoundTerms:
    """Assemble the three terms (all (B,), nats) into ``BoundTerms``."""
    ld = torch.full_like(latent_vlb.double(), -latent_dims * math.log(scale))
    return BoundTerms(
        reconstruction=reconstruction.double(),
        neg_entropy=neg_entropy.double(),
        latent_cross_entropy=scaled_latent_nll(latent_vlb.double(), scale, latent_dims),
        log_det=ld,
    )
