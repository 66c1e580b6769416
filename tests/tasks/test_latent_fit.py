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


def test_complete_and_denoise_by_fit_share_one_setup():
    """The VAE's and GAN's wrappers are this: a setup (decoder, starts, prior, restarts, frozen nets)."""
    from types import SimpleNamespace

    from genbench.tasks.latent_fit import FitProblem, complete_by_fit, denoise_by_fit

    net = torch.nn.Linear(4, 4, bias=False)
    net.weight.data = torch.eye(4)
    net.train(True)
    seen = []

    def setup(model, target, known, generator):
        seen.append((target.shape, known.dtype))
        return FitProblem(decode=lambda z: net(z).view(target.shape), draw=lambda n: torch.zeros(n, 4), restarts=2,
                          freeze=(net,))

    model = SimpleNamespace(device=torch.device("cpu"))
    y = torch.tensor([[0.2, 0.4, 0.6, 0.8]])
    known = torch.tensor([[True, False, True, False]])
    out = complete_by_fit(setup, model, y, known, None)
    assert torch.equal(out[known], y[known])
    assert net.training and net.weight.requires_grad and net.weight.grad is None  # restored, untouched
    noisy = denoise_by_fit(setup, model, y.view(1, 1, 1, 4), 0.5, torch.Generator().manual_seed(0))
    assert noisy.shape == (1, 1, 1, 4) and seen[-1][1] == torch.bool


def test_the_vae_and_gan_wrappers_import_no_other_plugin():
    import ast
    import inspect

    import genbench_gan.completion as gan
    import genbench_vae.completion as vae

    for module in (gan, vae):
        tree = ast.parse(inspect.getsource(module))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.startswith("genbench_")], (module.__name__, names)
