"""diffusers' schedulers by name: which class a name means, how it is built, what it costs, how it is called.

A name is an alias below ("ddim", "dpm-solver++", ...) or the class name of any diffusers scheduler
("EulerDiscreteScheduler").  Every scheduler is driven by the loop of diffusers' own pipelines (one network
evaluation per entry of ``scheduler.timesteps``), so the number of network evaluations of a setting is
``len(timesteps)`` after ``set_timesteps(steps)``:

  one per step   DDPM, DDIM (Song et al. 2021), DPM-Solver++ multistep and singlestep (Lu et al. 2023),
                 UniPC (Zhao et al. 2023; its corrector reuses the next step's evaluation), DEIS (Zhang & Chen
                 2023), Euler and Euler-ancestral (Karras et al. 2022 Algorithm 1 / 2), LMS
  2 steps - 1    Heun (Karras et al. 2022 Algorithm 1 with the second-order correction) and KDPM2: two
                 evaluations per step except the last, which is an Euler step to sigma = 0
  PNDM           (Liu et al. 2022) its Runge-Kutta warm-up adds evaluations: read off ``timesteps``
"""
from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from genbench.config import ConfigError


@dataclass(frozen=True)
class SchedulerKind:
    """A scheduler setting: the diffusers class, constructor options on top of the noise schedule, a table label."""

    class_name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""


ALIASES: dict[str, SchedulerKind] = {
    "ddpm": SchedulerKind("DDPMScheduler", label="DDPM"),
    "ddim": SchedulerKind("DDIMScheduler", label="DDIM"),
    "pndm": SchedulerKind("PNDMScheduler", label="PNDM"),
    "dpm-solver++": SchedulerKind("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}, "DPM-Solver++"),
    "sde-dpm-solver++": SchedulerKind("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"},
                                      "SDE-DPM-Solver++"),
    "dpm-solver-single": SchedulerKind("DPMSolverSinglestepScheduler", {"lower_order_final": True},
                                       "DPM-Solver++(single)"),
    "unipc": SchedulerKind("UniPCMultistepScheduler", label="UniPC"),
    "deis": SchedulerKind("DEISMultistepScheduler", label="DEIS"),
    "euler": SchedulerKind("EulerDiscreteScheduler", label="Euler"),
    "euler-ancestral": SchedulerKind("EulerAncestralDiscreteScheduler", label="Euler-ancestral"),
    "heun": SchedulerKind("HeunDiscreteScheduler", label="Heun"),
    "kdpm2": SchedulerKind("KDPM2DiscreteScheduler", label="KDPM2"),
    "lms": SchedulerKind("LMSDiscreteScheduler", label="LMS"),
}


def diffusers_module():
    """The diffusers package, or a one-line ConfigError that says how to install it."""
    try:
        import diffusers
    except ImportError:
        raise ConfigError("model 'diffusers' needs the diffusers package: pip install 'genbench[diffusers]'") from None
    return diffusers


def scheduler_kind(name: str) -> SchedulerKind:
    """The setting a config's ``scheduler`` names (an alias, or a diffusers scheduler class name)."""
    key = name.strip()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    diffusers = diffusers_module()
    cls = getattr(diffusers, key, None)
    if isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin):
        return SchedulerKind(key, label=key.removesuffix("Scheduler"))
    close = difflib.get_close_matches(key.lower(), list(ALIASES), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown diffusers scheduler {name!r}: {hint}use one of {', '.join(ALIASES)} "
                      f"or a diffusers scheduler class name such as 'EulerDiscreteScheduler'")


def build_scheduler(kind: SchedulerKind, base: dict[str, Any], overrides: dict[str, Any] | None = None):
    """``kind``'s class built from the noise-schedule config ``base`` (keys the class does not take are dropped,
    as ``from_config`` drops them), then ``overrides``, then the alias's own options."""
    cls = getattr(diffusers_module(), kind.class_name)
    accepted = inspect.signature(cls.__init__).parameters
    values = {**base, **(overrides or {}), **kind.options}
    with warnings.catch_warnings():  # numpy 2's copy-keyword DeprecationWarning inside diffusers' own code
        warnings.simplefilter("ignore", DeprecationWarning)
        return cls(**{k: v for k, v in values.items() if k in accepted})


def set_timesteps(scheduler, steps: int, device: torch.device | str = "cpu") -> None:
    kwargs = {"device": device} if "device" in inspect.signature(scheduler.set_timesteps).parameters else {}
    with warnings.catch_warnings():  # as in build_scheduler
        warnings.simplefilter("ignore", DeprecationWarning)
        scheduler.set_timesteps(steps, **kwargs)


def evaluations(scheduler, steps: int) -> int:
    """Network evaluations per image of a pipeline loop with ``steps`` steps: one per timestep entry."""
    set_timesteps(scheduler, steps, "cpu")
    return len(scheduler.timesteps)


def check_steps(kind: SchedulerKind, base: dict[str, Any], overrides: dict[str, Any], steps: int) -> None:
    """A one-line ConfigError if the scheduler cannot be built or cannot take ``steps`` steps (PNDM needs 4)."""
    try:
        evaluations(build_scheduler(kind, base, overrides), steps)
    except (ValueError, TypeError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"diffusers: scheduler {kind.label} cannot sample with {steps} steps ({reason}); "
                          f"change sample_steps or the scheduler") from None


def step_options(scheduler, generator: torch.Generator | None, eta: float) -> dict[str, Any]:
    """Keyword arguments of ``scheduler.step``: the sampling generator where it takes one (its noise is then
    drawn on the generator's device, the CPU, by diffusers' ``randn_tensor``), DDIM's eta where it takes one."""
    params = inspect.signature(scheduler.step).parameters
    out: dict[str, Any] = {}
    if "generator" in params and generator is not None:
        out["generator"] = generator
    if "eta" in params:
        out["eta"] = eta
    return out


def denoise(net, scheduler, x: torch.Tensor, generator: torch.Generator | None, eta: float) -> torch.Tensor:
    """diffusers' pipeline loop from x_T (already scaled by ``init_noise_sigma``) to x_0, one call of ``net``
    per timestep; ``scheduler`` has its timesteps set on ``x``'s device."""
    options = step_options(scheduler, generator, eta)
    for t in scheduler.timesteps:
        out = net(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(out, t, x, **options).prev_sample
    return x
