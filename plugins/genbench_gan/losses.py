"""GAN objectives on discriminator logits: non-saturating and hinge.

Both take the raw logits ``real`` = D(x) and ``fake`` = D(G(z)) (shape (B,)) and
return batch means, which are the Monte-Carlo estimates of the expectations in
the papers.

Non-saturating (Goodfellow et al. 2014, eq. 1 and the remark after it): D
maximises E log sigma(D(x)) + E log(1 - sigma(D(G(z)))); G maximises
E log sigma(D(G(z))) instead of minimising E log(1 - sigma(D(G(z)))).  With
-log sigma(t) = softplus(-t) and -log(1 - sigma(t)) = softplus(t):

    L_D = E softplus(-D(x)) + E softplus(D(G(z))),   L_G = E softplus(-D(G(z))).

Hinge (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17):

    L_D = E relu(1 - D(x)) + E relu(1 + D(G(z))),   L_G = -E D(G(z)).
"""
from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor


def ns_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss of the non-saturating GAN: E softplus(-D(x)) + E softplus(D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g_loss(fake: Tensor) -> Tensor:
    """Generator loss of the non-saturating GAN: E softplus(-D(G(z))) = -E log sigma(D(G(z)))."""
    return F.softplus(-fake).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator hinge loss: E relu(1 - D(x)) + E relu(1 + D(G(z)))."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    """Generator hinge loss: -E D(G(z))."""
    return -fake.mean()


LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "ns": (ns_d_loss, ns_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
}


def get_losses(name: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """(d_loss, g_loss) for ``name`` in {"ns", "hinge"}; one-line error otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown GAN loss {name!r}; choose one of: {', '.join(sorted(LOSSES))}") from None
