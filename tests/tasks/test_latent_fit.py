"""The shared latent optimiser against the closed-form MAP of a linear-Gaussian decoder."""
from __future__ import annotations

import torch

from genbench.tasks.latent_fit import fit_latents, restore_by_fit


def test_fit_matches_the_closed_form_map_of_a_linear_decoder():
    # g(z) = A z, y = known pixels, objective |M(Az - y)|^2 / (2 s^2) + |z|^2 / 2:
    # z* = (A_k^T A_k / s^2 + I)^{-1} A_k^T y_k / s^2
    gen = torch.Generator().manual_seed(0)
    d, l, s = 12, 3, 0.3
    A = torch.randn(d, l, generator=gen, dtype=torch.float64) / 2
    y = torch.randn(2, d, generator=gen, dtype=torch.float64)
    known = torch.zeros(1, d, dtype=torch.bool)
    known[:, :7] = True
    Ak = A[:7]
    exact = torch.linalg.solve(Ak.T @ Ak / s**2 + torch.eye(l, dtype=torch.float64), (Ak.T @ y[:, :7].T) / s**2).T
    z, _ = fit_latents(lambda z: z @ A.T, torch.zeros(2, l, dtype=torch.float64), y, known, s, steps=2000, lr=0.05)
    assert torch.allclose(z, exact, atol=2e-3), (z, exact)


def test_restore_keeps_known_pixels_unless_told_not_to():
    A = torch.eye(4)
    y = torch.tensor([[0.2, 0.4, 0.6, 0.8]])
    known = torch.tensor([[True, False, True, False]])
    out = restore_by_fit(lambda z: z @ A.T, lambda n: torch.zeros(n, 4), y, known, 0.1, steps=5)
    assert torch.equal(out[known], y[known])
    free = restore_by_fit(lambda z: z @ A.T, lambda n: torch.zeros(n, 4), y, known, 0.1, steps=5, keep_known=False)
    assert not torch.equal(free[known], y[known])  # 5 Adam steps from 0 have not reached y
