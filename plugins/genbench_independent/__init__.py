"""The reference model: an independent categorical distribution per sub-pixel.

p(x) = prod_d Cat(x_d; theta_d), theta_d the add-alpha smoothed level frequencies
of sub-pixel d in the training data (the maximum-a-posteriori estimate under a
symmetric Dirichlet(alpha+1) prior).  Its likelihood is exact; sampling draws each
sub-pixel independently.  It stands in every report as the sanity baseline: any
model worth reporting beats its bits/dim, and its FID shows what "no structure" costs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, hookimpl


@dataclass
class IndependentConfig(ModelConfig):
    alpha: float = 1.0  # additive (Laplace) smoothing of the counts
    max_steps: int | None = 200
    eval_every: int = 50


class IndependentCategorical(GenerativeModel):
    """Per-sub-pixel categorical over the data's K levels, fitted by counting."""

    name = "independent"
    description = "independent per-sub-pixel categorical (exact likelihood): the sanity baseline"
    Config = IndependentConfig
    presets = {
        "tiny": {"max_steps": 5, "n_samples": 16, "sample_batch_size": 16, "eval_every": 5, "batch_size": 32},
        "quick": {"max_steps": 100},
        "standard": {"max_steps": 400},
    }
    likelihood = "exact"
    role = "baseline"

    def __init__(self, config: IndependentConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        # counts over the whole training set seen so far; a batch that repeats adds again
        # (each epoch is one more pass over the same data, so frequencies are unchanged)
        self.counts = torch.zeros(data.dims, data.levels, dtype=torch.float64, device=self.device)

    def log_probs(self) -> Tensor:
        """(D, K) log theta."""
        smoothed = self.counts + self.config.alpha
        return (smoothed / smoothed.sum(-1, keepdim=True)).log()

    def train_step(self, x: Tensor) -> dict[str, float]:
        k = self.data.to_levels(x).reshape(len(x), -1)
        self.counts.scatter_add_(1, k.T, torch.ones_like(k.T, dtype=torch.float64))
        return {"loss": float(self.nll(x).mean() / self.data.dims)}

    def nll(self, x: Tensor) -> Tensor:
        k = self.data.to_levels(x).reshape(len(x), -1)
        return -self.log_probs().gather(1, k.T).sum(0).to(torch.float32)

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        probs = self.log_probs().exp().float().cpu()
        idx = torch.multinomial(probs, n, replacement=True, generator=generator)  # (D, n)
        return self.data.to_unit(idx.T.reshape(n, *self.data.shape)).to(self.device)

    def extra_state(self) -> dict:
        return {"counts": self.counts.cpu()}

    def load_extra_state(self, state: dict) -> None:
        self.counts = state["counts"].to(self.device, torch.float64)


@hookimpl
def genbench_models() -> list[type]:
    return [IndependentCategorical]
