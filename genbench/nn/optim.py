"""One optimiser step, shared by every model: back-propagation, optional gradient-norm clipping, the update and
(with fp16) loss scaling -- so a plugin's ``train_step`` never needs to know the run's precision.

``optimiser_step(opt, loss, params, grad_clip=..., lr=...)``:

- without loss scaling (fp32 and bf16 runs, and any call outside the runner): ``opt.zero_grad(set_to_none=True)``,
  ``loss.backward()``, ``clip_grad_norm_`` when ``grad_clip`` > 0, ``opt.step()`` -- the plain PyTorch loop;
- inside ``loss_scaling(...)`` (the runner's fp16 block, ``genbench.runner.precision``): the loss is multiplied by
  the optimiser's ``torch.amp.GradScaler`` scale before ``backward``, the gradients are unscaled before clipping,
  and ``scaler.step`` skips the update when any gradient is inf/NaN (the scale then halves; after 2000 good
  steps it doubles).  ``scaler.update()`` follows every step, so sequential steps of different optimisers
  (a GAN's discriminator steps, then its generator step) each see the scale their predecessor left.

Each optimiser has its own scaler (``LossScaling`` keys them by the name in ``model.optimizers``), as the
PyTorch AMP notes allow for several optimisers; a GAN's generator and discriminator gradients differ by orders
of magnitude, so one scale per optimiser overflows least.  A skipped step is counted (``LossScaling.skipped``)
and reported with a gradient norm of 0 (not measured), so the runner's divergence check does not mistake an
fp16 overflow, which the scaler handles, for a diverged model.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import Tensor


class LossScaling:
    """A ``torch.amp.GradScaler`` per optimiser (fp16 training), and how many steps they skipped.

    ``optimizers`` names the optimisers whose scaler state goes into checkpoints (``state_dict``); an
    optimiser not named there gets a scaler of its own at its first step (not checkpointed)."""

    def __init__(self, device: torch.device | str, optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
                 **scaler_kwargs: float) -> None:
        self.device_type = torch.device(device).type
        self.scaler_kwargs = scaler_kwargs
        self.names = {id(opt): name for name, opt in (optimizers or {}).items()}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.skipped = 0  # optimiser steps skipped for inf/NaN gradients, over the run
        self.steps = 0  # optimiser steps taken or skipped

    def scaler_for(self, opt: torch.optim.Optimizer) -> torch.amp.GradScaler:
        name = self.names.setdefault(id(opt), f"unnamed-{len(self.names)}")
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler(self.device_type, **self.scaler_kwargs)
        return self.scalers[name]

    def scale(self) -> float:
        """The smallest current scale over the optimisers (the one nearest to trouble); 0 before any step."""
        return min((s.get_scale() for s in self.scalers.values()), default=0.0)

    def stats(self) -> dict[str, float]:
        """What the runner adds to a step's losses: the current loss scale and the skipped steps so far."""
        return {"loss_scale": self.scale(), "skipped_steps": float(self.skipped)}

    def state_dict(self) -> dict:
        named = set(self.names.values())
        return {"scalers": {n: s.state_dict() for n, s in self.scalers.items() if not n.startswith("unnamed-")
                            and n in named},
                "skipped": self.skipped, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.skipped, self.steps = int(state.get("skipped", 0)), int(state.get("steps", 0))
        for name, s in state.get("scalers", {}).items():
            scaler = self.scalers.setdefault(name, torch.amp.GradScaler(self.device_type, **self.scaler_kwargs))
            scaler.load_state_dict(s)


_ACTIVE: ContextVar[LossScaling | None] = ContextVar("genbench_loss_scaling", default=None)


@contextmanager
def loss_scaling(scaling: LossScaling | None) -> Iterator[LossScaling | None]:
    """``optimiser_step`` scales the loss with ``scaling`` inside the block (None: no scaling)."""
    token = _ACTIVE.set(scaling)
    try:
        yield scaling
    finally:
        _ACTIVE.reset(token)


def active_loss_scaling() -> LossScaling | None:
    """The loss scaling of the enclosing ``loss_scaling`` block, or None."""
    return _ACTIVE.get()


@dataclass
class StepResult:
    """``loss`` (detached), ``grad_norm`` (before clipping, detached; 0 without clipping or for a skipped step)
    and whether the scaler ``skipped`` the update."""

    loss: Tensor
    grad_norm: Tensor
    skipped: bool = False

    def __iter__(self) -> Iterator[Tensor]:  # ``loss, gnorm = optimiser_step(...)``
        return iter((self.loss, self.grad_norm))


def _found_inf(scaler: torch.amp.GradScaler, opt: torch.optim.Optimizer, grad_norm: Tensor | None) -> bool:
    """Whether ``scaler`` found inf/NaN gradients for ``opt`` at this step (the scaler already synchronised on it)."""
    try:
        found = scaler._per_optimizer_states[id(opt)]["found_inf_per_device"]  # noqa: SLF001 (filled by unscale_)
        return bool(sum(float(v) for v in found.values()))
    except (AttributeError, KeyError, TypeError):
        return grad_norm is not None and not bool(torch.isfinite(grad_norm))


def optimiser_step(opt: torch.optim.Optimizer, loss: Tensor, params: Iterable[Tensor] | None = None, *,
                   grad_clip: float = 0.0, lr: float | None = None,
                   scaling: LossScaling | None | str = "active") -> StepResult:
    """Back-propagate ``loss`` and take one step of ``opt``: learning rate set to ``lr`` first (None: unchanged),
    gradient norm of ``params`` (default: every parameter of ``opt``) clipped at ``grad_clip`` (0 = off), the loss
    scaled by the active ``loss_scaling`` (``scaling``: "active", a ``LossScaling``, or None for none)."""
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr
    if scaling == "active":
        scaling = active_loss_scaling()
    clip = grad_clip is not None and grad_clip > 0
    if clip:
        params = [p for g in opt.param_groups for p in g["params"]] if params is None else list(params)
    opt.zero_grad(set_to_none=True)
    if scaling is None:
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if clip else torch.tensor(0.0)
        opt.step()
        return StepResult(loss.detach(), gnorm.detach())
    assert isinstance(scaling, LossScaling)
    scaler = scaling.scaler_for(opt)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)  # the true gradients: clipping and the norm see them, not the scaled ones
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if clip else None
    scaler.step(opt)  # skipped when a gradient is inf/NaN
    skipped = _found_inf(scaler, opt, gnorm)
    scaler.update()
    scaling.steps += 1
    scaling.skipped += int(skipped)
    if skipped or gnorm is None:
        gnorm = torch.tensor(0.0)
    return StepResult(loss.detach(), gnorm.detach(), skipped)
