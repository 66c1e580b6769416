"""Discrete decoder likelihoods p(x | z) over the data's K levels per sub-pixel (the VAE's and the latent
diffusion autoencoder's decoders).

Both families give a probability mass over the K levels of every sub-pixel, so
sum_z-free ``log p(x|z)`` is the log of a probability (<= 0) and the ELBO built on
it bounds log P(x) of the *discrete* data (never a continuous density):

* ``categorical``: a softmax over K logits per sub-pixel (van den Oord et al. 2016,
  PixelRNN sec. 3.4).  Fully flexible per level (it can put mass on both 0 and 16
  of a digit's edge pixel); K output channels per sub-pixel.
* ``logistic``: the discretised logistic of Salimans et al. 2017 (PixelCNN++, eq. 2)
  with one component: levels k are centred at x_k = 2k/(K-1) - 1 in [-1, 1], bin
  half-width delta = 1/(K-1), P(k) = sigma((x_k+delta-mu)/s) - sigma((x_k-delta-mu)/s),
  the edge bins take the tails (k=0 down to -inf, k=K-1 up to +inf).  Two outputs
  per sub-pixel and ordinal: neighbouring levels share strength, which is what
  K=256 data needs.

The decoder emits ``params`` of shape (B, C, P, H, W) with P = ``n_params``.  Every log-probability is computed in
float32 whatever the decoder's dtype: under bf16 autocast the network's outputs are bfloat16 (8-bit mantissa), in
which the level centres 2k/(K-1) - 1 of 256 levels and the bin edges around them collide (the discretised
logistic's mass turned NaN within three steps of a 28x28 autoencoder); the network may run in bf16, its loss not.
"""
from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def at_least_fp32(t: Tensor) -> Tensor:
    """``t`` in float32 if its dtype is narrower (bfloat16 / float16 under autocast), else unchanged (float64 stays)."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def log1mexp(d: Tensor) -> Tensor:
    """log(1 - exp(-d)) for d > 0, stable at both ends (Maechler 2012, eq. 7)."""
    return torch.where(d < math.log(2.0), torch.log(-torch.expm1(-d)), torch.log1p(-torch.exp(-d)))


class DiscreteLikelihood(abc.ABC):
    """A family of distributions over K levels per sub-pixel, parameterised by the decoder."""

    name: str

    def __init__(self, levels: int) -> None:
        self.levels = levels

    @property
    @abc.abstractmethod
    def n_params(self) -> int:
        """Decoder outputs per sub-pixel."""

    @abc.abstractmethod
    def log_probs_all(self, params: Tensor) -> Tensor:
        """(B, C, H, W, K) log P(level k) for every level (memory B*D*K; for tests and small K)."""

    @abc.abstractmethod
    def log_prob(self, params: Tensor, levels: Tensor) -> Tensor:
        """(B, C, H, W) log P(x = levels) per sub-pixel; ``levels`` int64 (B, C, H, W)."""

    @abc.abstractmethod
    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        """Levels (B, C, H, W) drawn by inverting the CDF at uniforms ``u`` (B, C, H, W)."""

    @abc.abstractmethod
    def mode(self, params: Tensor) -> Tensor:
        """The most probable level per sub-pixel (B, C, H, W)."""

    @abc.abstractmethod
    def mean(self, params: Tensor) -> Tensor:
        """A point estimate in [0, 1] per sub-pixel (B, C, H, W), on the k/(K-1) scale of the data."""

    def log_likelihood(self, params: Tensor, levels: Tensor) -> Tensor:
        """log p(x|z) per image (B,): the sum over sub-pixels (conditional independence given z)."""
        return self.log_prob(params, levels).flatten(1).sum(1)


class Categorical(DiscreteLikelihood):
    """Softmax over K logits per sub-pixel."""

    name = "categorical"

    @property
    def n_params(self) -> int:
        return self.levels

    def log_probs_all(self, params: Tensor) -> Tensor:
        return F.log_softmax(at_least_fp32(params), dim=2).permute(0, 1, 3, 4, 2)

    def log_prob(self, params: Tensor, levels: Tensor) -> Tensor:
        # -cross_entropy over the class dim (dim 1 after merging B and C) is log softmax gathered
        b, c, k, h, w = params.shape
        return -F.cross_entropy(at_least_fp32(params).reshape(b * c, k, h, w), levels.reshape(b * c, h, w), reduction="none").reshape(
            b, c, h, w
        )

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        cdf = torch.softmax(params.float(), dim=2).cumsum(2)
        # the number of levels whose CDF lies below u is the drawn level (inverse CDF)
        return (cdf < u.unsqueeze(2)).sum(2).clamp(max=self.levels - 1)

    def mode(self, params: Tensor) -> Tensor:
        return params.argmax(2)

    def mean(self, params: Tensor) -> Tensor:
        """E[k] / (K - 1)."""
        ks = torch.arange(self.levels, device=params.device, dtype=torch.float32)
        return (torch.softmax(params.float(), dim=2) * ks[:, None, None]).sum(2) / (self.levels - 1)


class DiscretisedLogistic(DiscreteLikelihood):
    """One discretised logistic per sub-pixel (PixelCNN++ eq. 2), exact tails at both edges."""

    name = "logistic"
    min_log_scale = -7.0

    @property
    def n_params(self) -> int:
        return 2

    def _loc_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        params = at_least_fp32(params)
        mu = params[:, :, 0]
        log_s = params[:, :, 1].clamp(min=self.min_log_scale)
        return mu, log_s

    def _centres(self, levels: Tensor, dtype: torch.dtype) -> Tensor:
        return 2.0 * levels.to(dtype) / (self.levels - 1) - 1.0

    def _log_mass(self, mu: Tensor, log_s: Tensor, levels: Tensor) -> Tensor:
        """log P(k) = log(sigma(a) - sigma(b)) = logsig(a) + logsig(-b) + log(1 - e^{b-a}), a=(x+d-mu)/s, b=(x-d-mu)/s."""
        delta = 1.0 / (self.levels - 1)
        inv_s = torch.exp(-log_s)
        x = self._centres(levels, mu.dtype)
        a = (x + delta - mu) * inv_s
        b = (x - delta - mu) * inv_s
        interior = F.logsigmoid(a) + F.logsigmoid(-b) + log1mexp(2.0 * delta * inv_s)
        lowest = F.logsigmoid(a)  # k = 0: P = sigma(a)
        highest = F.logsigmoid(-b)  # k = K-1: P = 1 - sigma(b)
        return torch.where(levels == 0, lowest, torch.where(levels == self.levels - 1, highest, interior))

    def log_probs_all(self, params: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        ks = torch.arange(self.levels, device=params.device)
        return self._log_mass(mu.unsqueeze(-1), log_s.unsqueeze(-1), ks)

    def log_prob(self, params: Tensor, levels: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        return self._log_mass(mu, log_s, levels)

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        # continuous logistic draw y = mu + s*logit(u); its bin is the discretised draw
        mu, log_s = self._loc_scale(params)
        u = u.clamp(1e-6, 1 - 1e-6)
        y = mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
        return self._nearest(y)

    def _nearest(self, y: Tensor) -> Tensor:
        return torch.round((y.clamp(-1.0, 1.0) + 1.0) * (self.levels - 1) / 2.0).to(torch.int64)

    def mode(self, params: Tensor) -> Tensor:
        # unimodal in k: the bin holding mu is the interior maximum; the edge bins hold the tails,
        # so the mode is the most probable of {bin of mu, 0, K-1}
        mu, log_s = self._loc_scale(params)
        cands = torch.stack([self._nearest(mu), torch.zeros_like(mu, dtype=torch.int64),
                             torch.full_like(mu, self.levels - 1, dtype=torch.int64)], -1)
        lp = self._log_mass(mu.unsqueeze(-1), log_s.unsqueeze(-1), cands)
        return cands.gather(-1, lp.argmax(-1, keepdim=True)).squeeze(-1)

    def mean(self, params: Tensor) -> Tensor:
        """The location mapped to [0, 1] (the logistic's mean, before the edge bins absorb the tails)."""
        return ((params[:, :, 0].float() + 1) / 2).clamp(0, 1)


FAMILIES: dict[str, type[DiscreteLikelihood]] = {"categorical": Categorical, "logistic": DiscretisedLogistic}

#: above this many levels ``auto`` picks the discretised logistic, at or below it the categorical
AUTO_MAX_CATEGORICAL_LEVELS = 64


def make_likelihood(kind: str, levels: int) -> DiscreteLikelihood:
    """``kind`` in {"categorical", "logistic", "auto"}; auto = categorical for K <= 64, else logistic."""
    if kind == "auto":
        kind = "categorical" if levels <= AUTO_MAX_CATEGORICAL_LEVELS else "logistic"
    if kind not in FAMILIES:
        raise ValueError(f"decoder likelihood {kind!r} unknown; choose one of auto, {', '.join(FAMILIES)}")
    return FAMILIES[kind](levels)
