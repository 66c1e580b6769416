"""Sampling loops over any epsilon-predicting callable (pixels or latents): Algorithm 2, DDIM and Algorithm 2 on a
strided sub-sequence of the time indices.

``eps_fn(x, t) -> eps`` takes a batch ``x`` of shape ``shape`` and an int64 tensor ``t`` of time indices
(0..T-1, see ``schedule``) and returns the predicted noise, or a pair (eps, log Sigma) for a learned variance
(Nichol & Dhariwal 2021 eq. 15): Algorithm 2 then draws with that variance, DDIM uses eps only.  All randomness is drawn on the CPU from
``generator`` and moved to ``device``, so samples do not depend on the device or on other RNG users.
Each function returns ``(x_0, nfe)``: the final sample (in the diffusion's space, e.g. [-1, 1]) and
the number of ``eps_fn`` evaluations each sample went through; ``sampler_nfe`` says it beforehand and
``sampler_name`` names the setting in tables ("ancestral-1000", "DDIM-50", "DDIM-50, eta=1", "ancestral-100"
for the strided one).
"""
from __future__ import annotations


import torch
from torch import Tensor

from .learned_variance import interpolated_log_variance
from .schedule import Schedule, ddim_step, reverse_step
from .vlb import EpsFn, split_eps

#: what a sampler setting with fewer steps than T runs: DDIM, or Algorithm 2 on the strided sub-sequence
STRIDED_SAMPLERS = ("ddim", "ancestral")


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str, dtype: torch.dtype) -> Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


def ancestral_sample(
    eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu", variance: str = "beta", clip_x0: float | None = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, int]:
    """Algorithm 2 of Ho et al.: x_T ~ N(0, I); for t = T..1: x_{t-1} = mu_theta(x_t, t) + sigma_t z
    (z = 0 at the last step); T network evaluations.  ``variance`` selects sigma_t^2 = beta_t or beta~_t, unless
    ``eps_fn`` returns a learned log variance with eps."""
    x = _randn(shape, generator, device, dtype)
    n = shape[0]
    for i in reversed(range(schedule.T)):
        t = torch.full((n,), i, dtype=torch.long, device=device)
        eps, log_var = split_eps(eps_fn(x, t))
        z = _randn(shape, generator, device, dtype) if i > 0 else None
        x = reverse_step(schedule, x, t, eps, z, variance=variance, clip_x0=clip_x0, log_var=log_var)
    return x, schedule.T


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` time indices from T-1 down to 0, evenly spaced (rounded; duplicates removed)."""
    if not 1 <= steps <= T:
        raise ValueError(f"DDIM needs 1 <= steps <= T={T}, got {steps}")
    idx = torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(idx), reverse=True)


def ddim_sample(
    eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], steps: int, *, eta: float = 0.0,
    generator: torch.Generator | None = None, device: torch.device | str = "cpu", clip_x0: float | None = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, int]:
    """DDIM (Song et al. 2021, eq. 12) on an evenly spaced sub-sequence of ``steps`` time indices;
    the last step jumps to x_0 (abar = 1).  ``steps`` network evaluations."""
    x = _randn(shape, generator, device, dtype)
    n = shape[0]
    seq = ddim_timesteps(schedule.T, steps)
    for j, i in enumerate(seq):
        i_prev = seq[j + 1] if j + 1 < len(seq) else -1
        t = torch.full((n,), i, dtype=torch.long, device=device)
        t_prev = torch.full((n,), i_prev, dtype=torch.long, device=device)
        eps, _ = split_eps(eps_fn(x, t))
        z = _randn(shape, generator, device, dtype) if (eta > 0 and i_prev >= 0) else None
        x = ddim_step(schedule, x, t, t_prev, eps, z, eta=eta, clip_x0=clip_x0)
    return x, len(seq)


def strided_ancestral_sample(
    net_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], steps: int, *, learned_variance: bool = False,
    generator: torch.Generator | None = None, device: torch.device | str = "cpu", variance: str = "beta",
    clip_x0: float | None = 1.0, dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, int]:
    """Algorithm 2 of Ho et al. on the ``steps`` evenly spaced time indices S of ``ddim_timesteps``, with the
    respaced schedule beta_{S_i} = 1 - abar_{S_i} / abar_{S_{i-1}} (``Schedule.respaced``; Nichol & Dhariwal 2021,
    section 4): the network is called at the original index S_i, and the reverse variance is the fixed ``variance``
    of the respaced schedule, or with ``learned_variance`` the interpolation of eq. 15 between the respaced beta
    and beta~ with the network's own v (``net_fn`` then returns the pair (eps, v), not a log variance: v is what
    carries over to another spacing).  With every index (steps = T) it is ``ancestral_sample``.  ``steps``
    network evaluations per sample."""
    seq = sorted(ddim_timesteps(schedule.T, steps))
    sub = schedule.respaced(seq)
    x = _randn(shape, generator, device, dtype)
    n = shape[0]
    for j in reversed(range(len(seq))):
        t = torch.full((n,), seq[j], dtype=torch.long, device=device)
        t_sub = torch.full((n,), j, dtype=torch.long, device=device)
        eps, v = split_eps(net_fn(x, t))
        if learned_variance and v is None:
            raise ValueError("strided_ancestral_sample with learned_variance needs net_fn to return (eps, v)")
        log_var = interpolated_log_variance(sub, t_sub, v) if learned_variance else None
        z = _randn(shape, generator, device, dtype) if j > 0 else None
        x = reverse_step(sub, x, t_sub, eps, z, variance=variance, clip_x0=clip_x0, log_var=log_var)
    return x, len(seq)


def uses_ddim(T: int, steps: int | None) -> bool:
    """Whether ``steps`` selects DDIM (``steps`` < T) rather than Algorithm 2 (None or >= T)."""
    return steps is not None and steps < T


def sampler_nfe(T: int, steps: int | None) -> int:
    """Network evaluations per sample of ``ancestral_sample`` (T) or ``ddim_sample`` (its distinct time indices)."""
    return len(ddim_timesteps(T, steps)) if uses_ddim(T, steps) else T  # type: ignore[arg-type]


def sampler_name(T: int, steps: int | None, eta: float = 0.0, strided: str = "ddim") -> str:
    """The sampler setting's name: "ancestral-T" for Algorithm 2, else "DDIM-steps" (with ", eta=..." if eta > 0),
    or "ancestral-steps" when fewer steps than T run the ``strided`` = "ancestral" sampler."""
    if strided not in STRIDED_SAMPLERS:
        raise ValueError(f"unknown strided sampler {strided!r}; use one of {', '.join(STRIDED_SAMPLERS)}")
    if not uses_ddim(T, steps):
        return f"ancestral-{T}"
    if strided == "ancestral":
        return f"ancestral-{sampler_nfe(T, steps)}"
    suffix = f", eta={eta:g}" if eta else ""
    return f"DDIM-{steps}{suffix}"
