"""Importance sampling of the time index for the diffusion bound (Nichol & Dhariwal 2021, section 3.3).

    L_vlb = E_{t ~ p_t}[ L_t / p_t ],   p_t proportional to sqrt(E[L_t^2]),   sum_t p_t = 1

E[L_t^2] is estimated from a history of the last ``history`` (10) values of L_t seen per t during training;
until every t has a full history, t is uniform (their code).  As in their released sampler, a small uniform
share ``uniform_mix`` (0.001) is mixed into p_t, so every t keeps p_t > 0 and the weighted estimate stays
unbiased whatever the history holds.

``sample`` returns the time indices and the weights 1 / (T p_t), so that the mean of ``weight * T * L_t`` is an
unbiased estimate of sum_t L_t (and the mean of ``weight * f(t)`` one of the uniform-t mean of any f).
The history is checkpointed (``state_dict``): a resumed run samples t as the uninterrupted one would.
"""
from __future__ import annotations

import torch
from torch import Tensor


class ImportanceSampler:
    """p_t proportional to sqrt(mean of the last ``history`` squared values of L_t), uniform until filled."""

    def __init__(self, T: int, history: int = 10, uniform_mix: float = 0.001) -> None:
        if T < 1 or history < 1 or not 0.0 <= uniform_mix <= 1.0:
            raise ValueError(f"need T >= 1, history >= 1, 0 <= uniform_mix <= 1; got {T}, {history}, {uniform_mix}")
        self.T, self.history, self.uniform_mix = T, history, uniform_mix
        self.values = torch.zeros(T, history, dtype=torch.float64)
        self.counts = torch.zeros(T, dtype=torch.long)

    @property
    def ready(self) -> bool:
        """Whether every t has a full history (before that, t is uniform)."""
        return bool((self.counts >= self.history).all())

    def probs(self) -> Tensor:
        """p_t (T,), float64: uniform until ``ready``, then sqrt(E[L_t^2]) normalised, mixed with uniform."""
        uniform = torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)
        if not self.ready:
            return uniform
        w = self.values.pow(2).mean(1).sqrt()
        if not torch.isfinite(w).all() or w.sum() <= 0:
            return uniform
        return (1 - self.uniform_mix) * w / w.sum() + self.uniform_mix * uniform

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[Tensor, Tensor]:
        """n time indices t ~ p_t (int64) and their weights 1 / (T p_t) (float32), on ``device``."""
        p = self.probs()
        t = torch.multinomial(p, n, replacement=True, generator=generator)
        w = 1.0 / (self.T * p[t])
        return t.to(device), w.float().to(device)

    def update(self, t: Tensor, losses: Tensor) -> None:
        """Append each observed L_t (one per entry of ``t``) to its t's history, dropping the oldest when full."""
        for ti, li in zip(t.detach().cpu().long().tolist(), losses.detach().double().cpu().reshape(-1).tolist()):
            c = int(self.counts[ti])
            if c >= self.history:
                self.values[ti, :-1] = self.values[ti, 1:].clone()
                self.values[ti, -1] = li
            else:
                self.values[ti, c] = li
                self.counts[ti] = c + 1

    def state_dict(self) -> dict[str, Tensor]:
        return {"values": self.values.clone(), "counts": self.counts.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        values, counts = state["values"], state["counts"]
        if tuple(values.shape) != (self.T, self.history) or tuple(counts.shape) != (self.T,):
            raise ValueError(f"importance-sampler state of shape {tuple(values.shape)} does not fit T={self.T}, "
                             f"history={self.history}")
        self.values, self.counts = values.double().clone(), counts.long().clone()
