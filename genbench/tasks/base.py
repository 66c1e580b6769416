"""The task protocol: corrupt test images deterministically from a seed, ask the model to restore them.

A task is a plugin (``genbench_tasks`` hook, like metrics).  ``corrupt(images, seed)`` returns what the model
is shown (``Corrupted``); ``restore(model, corrupted, generator)`` calls the model's optional capability
(``GenerativeModel.capabilities``: "complete", "denoise", "colourise"); ``unsupported(model, corrupted)`` says
in one line why a model cannot do it (the rows then say "not supported"; nothing fails).  Scoring is shared by
every task (``genbench.tasks.metrics``).
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from genbench.model import DataSpec, GenerativeModel, supports
from genbench.tasks.masks import MaskSpec, parse_mask

__all__ = ["Corrupted", "Task", "TaskError", "task_seed"]


class TaskError(ValueError):
    """A task that cannot run on this data or with these options; the message is one line."""


def task_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed derived from the cell's seed and names (independent of any global RNG state)."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


@dataclass
class Corrupted:
    """Corrupted test images: ``observed`` (n, C, H, W) in [0, 1] is what the model gets; ``known`` (n, 1 or C,
    H, W) bool marks the sub-pixels given exactly (all False for denoising and colourisation: then every
    sub-pixel is scored as "unknown"); ``truth`` the originals; ``params`` what the rows record."""

    observed: Tensor
    known: Tensor
    truth: Tensor
    params: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """One restoration task.  ``capability`` is the model method it needs; ``uses_mask`` whether ``--mask``
    applies (``default_mask`` when not given)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    capability: ClassVar[str] = "complete"
    uses_mask: ClassVar[bool] = True
    default_mask: ClassVar[str | None] = "center"

    #: method options for the models (``--task-set``: ``genbench.tasks.options``), checked by ``build_task``
    options: dict[str, int]

    def __init__(self, mask: str | MaskSpec | None = None, sigma: float = 0.2) -> None:
        self.options = {}
        if mask is not None and not self.uses_mask:
            raise TaskError(f"--task {self.name} takes no --mask (got {mask!r}); drop it")
        text = mask if mask is not None else self.default_mask
        self.mask: MaskSpec | None = (text if isinstance(text, MaskSpec) else parse_mask(text)) if text else None
        if not sigma > 0:
            raise TaskError(f"the noise level must be > 0, got {sigma:g}")
        self.sigma = float(sigma)

    @property
    def label(self) -> str:
        """The setting in rows and tables: the mask for completion tasks, sigma for denoising."""
        return self.mask.label if self.mask is not None else ""

    def setting(self, taken: dict[str, int] | None = None) -> str:
        """The rows' setting (``mask`` field, the task's folder): the label, then the ``--task-set`` options the
        model took (``taken``), e.g. ``bottom-half, jump_length=5, resamplings=3``; the label alone without."""
        extra = ", ".join(f"{k}={v}" for k, v in sorted((taken or {}).items()))
        return ", ".join(p for p in (self.label, extra) if p)

    def details(self, model: GenerativeModel, corrupted: Corrupted) -> dict[str, Any]:
        """What the model's method says about this restoration (its ``restoration_details(known)``: the options
        used, defaults included, and the method), for the rows' details; {} when it says nothing."""
        fn = getattr(model, "restoration_details", None)
        return dict(fn(self.capability, corrupted.known)) if callable(fn) else {}

    def check_data(self, spec: DataSpec) -> None:
        """Raise TaskError (one line) when the task cannot run on data of this shape."""

    def corrupt(self, images: Tensor, seed: int) -> Corrupted:
        """Keep the known sub-pixels of ``images`` (n, C, H, W in [0, 1]) and grey out the rest (0.5);
        the mask is drawn from ``seed`` alone (same seed, same corruption)."""
        assert self.mask is not None
        gen = torch.Generator().manual_seed(task_seed(seed, self.name, self.label))
        n, _, h, w = images.shape
        known = self.mask.known_mask(n, h, w, gen)
        observed = torch.where(known, images, torch.full_like(images, 0.5))
        return Corrupted(observed, known, images, {"mask": self.label})

    def unsupported(self, model: GenerativeModel, corrupted: Corrupted) -> str | None:
        """Why ``model`` cannot do this task on ``corrupted`` (one line), or None."""
        if not supports(model, self.capability):
            return f"{model.name} has no {self.capability}() (capability not declared)"
        if self.capability == "complete":
            return model.completion_unsupported(corrupted.known)
        return None

    def restore(self, model: GenerativeModel, corrupted: Corrupted, generator: torch.Generator) -> Tensor:
        """The model's restoration of ``corrupted`` (n, C, H, W) in [0, 1]."""
        return model.complete(corrupted.observed, corrupted.known, generator=generator)  # type: ignore[attr-defined]

    def nfe(self, model: GenerativeModel, corrupted: Corrupted) -> int | None:
        """Network evaluations per image of ``restore``, where the model says (else None)."""
        if self.capability == "complete":
            fn = getattr(model, "completion_nfe", None)
            count = None if fn is None else fn(corrupted.known)
        else:
            fn = getattr(model, f"{self.capability}_nfe", None)
            count = None if fn is None else fn(self.sigma)
        return None if count is None else int(count)
