"""The autoencoder's decoder likelihood p(x | z): a probability mass over the data's K levels per sub-pixel.

Because p(x | z) is a mass (not a density on [0, 1]), -log p(x | z) >= 0 and the latent-diffusion bound is a
bound on -log P(x) of the *discrete* data.

* ``categorical``: a softmax over K logits per sub-pixel (van den Oord et al. 2016, PixelRNN section 3.4).
* ``logistic``: one discretised logistic per sub-pixel (Salimans et al. 2017, PixelCNN++ eq. 2): level k sits
  at c_k = 2k/(K-1) - 1, its bin is [c_k - 1/(K-1), c_k + 1/(K-1)], the edge bins take the tails, so the K
  masses sum to one exactly.  Two outputs per sub-pixel; ordinal, which suits K = 256.

Decoder outputs ``params`` have shape (B, C, P, H, W), P = ``n_params``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``auto`` uses the categorical up to this many levels and the discretised logistic above
AUTO_MAX_CATEGORICAL = 64


class Categorical:
    """Softmax over K logits per sub-pixel."""

    name = "categorical"

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.n_params = levels

    def log_probs_all(self, params: Tensor) -> Tensor:
        """(B, C, H, W, K) log P(level k)."""
        return F.log_softmax(params.float(), dim=2).permute(0, 1, 3, 4, 2)

    def log_prob(self, params: Tensor, levels: Tensor) -> Tensor:
        """(B, C, H, W) log P(x = levels) per sub-pixel."""
        return F.log_softmax(params.float(), dim=2).gather(2, levels.unsqueeze(2)).squeeze(2)

    def mean(self, params: Tensor) -> Tensor:
        """E[k] / (K - 1) in [0, 1], (B, C, H, W)."""
        ks = torch.arange(self.levels, device=params.device, dtype=torch.float32)
        return (torch.softmax(params.float(), dim=2) * ks[:, None, None]).sum(2) / (self.levels - 1)

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        """Levels drawn by inverting the CDF at uniforms ``u`` (B, C, H, W)."""
        cdf = torch.softmax(params.float(), dim=2).cumsum(2)
        return (cdf < u.unsqueeze(2)).sum(2).clamp(max=self.levels - 1)


class DiscretisedLogistic:
    """One discretised logistic per sub-pixel (PixelCNN++ eq. 2) with exact tails at both edges."""

    name = "logistic"
    n_params = 2
    min_log_scale = -7.0

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def _loc_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        return params[:, :, 0].float(), params[:, :, 1].float().clamp(min=self.min_log_scale)

    def _log_mass(self, mu: Tensor, log_s: Tensor, levels: Tensor) -> Tensor:
        """log(sigma(a) - sigma(b)), a, b = (c_k +- 1/(K-1) - mu) / s; the edge bins are sigma(a) and 1 - sigma(b)."""
        half = 1.0 / (self.levels - 1)
        inv = torch.exp(-log_s)
        c = 2.0 * levels.to(torch.float32) / (self.levels - 1) - 1.0
        a, b = (c + half - mu) * inv, (c - half - mu) * inv
        # log(sigma(a) - sigma(b)) = logsig(a) + logsig(-b) + log(1 - exp(b - a)), with b - a = -2 half / s
        d = 2.0 * half * inv
        log1mexp = torch.where(d < math.log(2.0), torch.log(-torch.expm1(-d)), torch.log1p(-torch.exp(-d)))
        interior = F.logsigmoid(a) + F.logsigmoid(-b) + log1mexp
        return torch.where(levels == 0, F.logsigmoid(a), torch.where(levels == self.levels - 1, F.logsigmoid(-b), interior))

    def log_probs_all(self, params: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        ks = torch.arange(self.levels, device=params.device)
        return self._log_mass(mu.unsqueeze(-1), log_s.unsqueeze(-1), ks)

    def log_prob(self, params: Tensor, levels: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        return self._log_mass(mu, log_s, levels)

    def mean(self, params: Tensor) -> Tensor:
        """The location mapped to [0, 1] (the logistic's mean, before the edge bins absorb the tails)."""
        return ((params[:, :, 0].float() + 1) / 2).clamp(0, 1)

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        u = u.clamp(1e-6, 1 - 1e-6)
        y = mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
        return torch.round((y.clamp(-1.0, 1.0) + 1.0) * (self.levels - 1) / 2.0).to(torch.int64)


Likelihood = Categorical | DiscretisedLogistic


def make_likelihood(kind: str, levels: int) -> Likelihood:
    """``kind`` in {"auto", "categorical", "logistic"}; auto = categorical for K <= 64, else logistic."""
    if kind == "auto":
        kind = "categorical" if levels <= AUTO_MAX_CATEGORICAL else "logistic"
    if kind == "categorical":
        return Categorical(levels)
    if kind == "logistic":
        return DiscretisedLogistic(levels)
    raise ValueError(f"decoder likelihood {kind!r} unknown; use auto, categorical or logistic")
