"""Shared helpers for the diffusion tests: an exact "oracle" denoiser for a finite data distribution."""
from __future__ import annotations

import pytest
import torch

from genbench.diffusion.schedule import Schedule, eps_from_x0, extract


def oracle_eps(s: Schedule, protos: torch.Tensor, probs: torch.Tensor):
    """The Bayes-optimal eps predictor E[eps | x_t] when x_0 is one of ``protos`` (J, ...) with ``probs``:
    E[x_0 | x_t] = sum_j w_j x^j, w_j ∝ p_j N(x_t; sqrt(abar_t) x^j, (1 - abar_t) I)."""

    def eps_fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = extract(s.alpha_bar, t, xt)
        d2 = ((xt[:, None] - ab[:, None].sqrt() * protos[None].to(xt.dtype)) ** 2).flatten(2).sum(2)
        logw = probs.log().to(xt.dtype)[None] - d2 / (2 * (1 - ab.flatten()[:, None]))
        x0 = torch.einsum("bj,j...->b...", logw.softmax(1), protos.to(xt.dtype))
        return eps_from_x0(s, xt, t, x0)

    return eps_fn


@pytest.fixture
def oracle():
    """The ``oracle_eps`` factory, as a fixture (test modules cannot import conftest under importlib mode)."""
    return oracle_eps
