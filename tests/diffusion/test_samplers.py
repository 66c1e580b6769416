"""The samplers, driven by the exact denoiser, reproduce the data distribution; their names and NFE."""
from __future__ import annotations

import pytest
import torch

from genbench.diffusion.samplers import ancestral_sample, ddim_sample, ddim_timesteps, sampler_name, sampler_nfe
from genbench.diffusion.schedule import Schedule

K = 17


def prototypes(n_pixels: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """4 random K-level images (in [-1, 1]) with probabilities .4/.3/.2/.1."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randint(0, K, (4, 1, 1, n_pixels), generator=g).double() / (K - 1) * 2 - 1
    return protos, torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)


@pytest.mark.parametrize("sampler", ["ancestral-beta", "ancestral-posterior", "ddim-20", "ddim-20-eta1"])
def test_samplers_with_exact_denoiser_reproduce_the_data_distribution(oracle, sampler):
    """Driven by E[eps | x_t], sampling returns the prototypes with their probabilities (a sign or
    coefficient error in a step breaks this)."""
    protos, probs = prototypes(n_pixels=4)
    s = Schedule.make("cosine", 100)
    g = torch.Generator().manual_seed(6)
    n = 600
    eps = oracle(s, protos, probs)
    if sampler.startswith("ancestral"):
        x, nfe = ancestral_sample(eps, s, (n, 1, 1, 4), generator=g, variance=sampler.split("-")[1], dtype=torch.float64)
        assert nfe == 100
    else:
        x, nfe = ddim_sample(eps, s, (n, 1, 1, 4), 20, eta=1.0 if sampler.endswith("eta1") else 0.0, generator=g,
                             dtype=torch.float64)
        assert nfe == 20
    d = ((x[:, None] - protos[None]) ** 2).flatten(2).sum(2)
    nearest = d.argmin(1)
    assert d.min(1).values.max() < (1.0 / (K - 1)) ** 2  # every sample lands on a prototype
    freq = torch.bincount(nearest, minlength=4).double() / n
    assert torch.allclose(freq, probs, atol=0.07), freq  # ~3.5 std. errors at n = 600


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    seq = ddim_timesteps(1000, 50)
    assert len(seq) == 50 and seq[0] == 999 and seq[-1] == 0 and seq == sorted(seq, reverse=True)
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)


@pytest.mark.parametrize("steps,nfe,name", [(None, 20, "ancestral-20"), (20, 20, "ancestral-20"), (50, 20, "ancestral-20"),
                                            (5, 5, "DDIM-5"), (1, 1, "DDIM-1")])
def test_sampler_names_and_nfe_match_what_the_loops_do(steps, nfe, name):
    s = Schedule.make("linear", 20)
    eps = lambda x, t: torch.zeros_like(x)  # noqa: E731
    if steps is None or steps >= s.T:
        _, ran = ancestral_sample(eps, s, (2, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    else:
        _, ran = ddim_sample(eps, s, (2, 1, 2, 2), steps, generator=torch.Generator().manual_seed(0))
    assert sampler_nfe(s.T, steps) == ran == nfe
    assert sampler_name(s.T, steps) == name
    assert sampler_name(s.T, 5, eta=1.0) == "DDIM-5, eta=1" and sampler_name(s.T, None, eta=1.0) == "ancestral-20"
