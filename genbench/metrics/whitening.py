"""Whitening a feature network on the real training split, so its FIDs sit on a readable, documented scale.

A randomly initialised CNN's features have tiny and very unequal variances (FIDs of 1e-6..1e-4), so an FID
says little until it is put in units of the data's own spread.  ZCA whitening (Bell & Sejnowski 1997;
Kessy, Lewin & Strimmer 2018, eq. 5) with a ridge:

    z = W (f - mu),   W = V diag((lambda + eps)^(-1/2)) V^T,   eps = ridge * mean(lambda)

with mu, S = V diag(lambda) V^T the mean and (unbiased) covariance of the features of the training split.  On
the training features z has identity covariance (up to the ridge, which damps directions whose variance is
below ``ridge`` times the average: round-off and unused channels).  FID is invariant to rotations, so ZCA and
PCA whitening give the same FID; ZCA keeps each coordinate near the feature it came from.  On the whitened
scale a real-data floor of n images in d dimensions is about d(d+1)/4 * (1/n_1 + 1/n_2) (the bias of the
covariance term for identity covariances) and any distance is in "training-set standard deviations".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

RIDGE = 1e-3


@dataclass
class Whitening:
    """mu (d,), W (d, d), the ridge (relative to the mean eigenvalue) and the number of feature rows fitted."""

    mean: Tensor
    matrix: Tensor
    ridge: float
    n: int


def fit_whitening(features: Tensor, ridge: float = RIDGE) -> Whitening:
    """ZCA whitening of ``features`` (n, d) with eps = ridge * mean eigenvalue of their covariance (float64 fit)."""
    f = features.to(torch.float64)
    if len(f) < 2:
        raise ValueError(f"whitening needs at least 2 training images, got {len(f)}; provide a larger training split")
    mean = f.mean(0)
    cov = torch.cov(f.T)
    eig, vec = torch.linalg.eigh((cov + cov.T) / 2)
    eig = eig.clamp_min(0)
    eps = ridge * float(eig.mean())
    if not eps > 0:
        raise ValueError("the training images all give the same features; whitening is undefined for constant data")
    matrix = (vec * (eig + eps).rsqrt()) @ vec.T
    return Whitening(mean, matrix, ridge, len(f))


class Whitened(nn.Module):
    """``net`` followed by z = W (f - mu): the whitening's mean and matrix are buffers, so they are part of the
    extractor's weights (and of its sha256)."""

    def __init__(self, net: nn.Module, dims: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("white_mean", torch.zeros(dims))
        self.register_buffer("white_matrix", torch.eye(dims))

    def set(self, whitening: Whitening) -> Whitened:
        self.white_mean.copy_(whitening.mean.to(self.white_mean))
        self.white_matrix.copy_(whitening.matrix.to(self.white_matrix))
        return self

    def forward(self, x: Tensor) -> Tensor:
        f = self.net(x)
        return (f - self.white_mean) @ self.white_matrix  # W is symmetric: row-vector form of W (f - mu)

    def logits(self, x: Tensor) -> Tensor:  # a whitened network has no meaningful class head
        raise TypeError("a whitened feature network has no classifier head")
