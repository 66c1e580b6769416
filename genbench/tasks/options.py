"""Method options of the restoration tasks (``genbench run --task ... --task-set KEY=VALUE``).

A family declares the options its restoration method takes: a model class's ``task_options`` (a dict of
:class:`TaskOption`), or, for a :class:`~genbench.tasks.delegate.RestorationModule`, the ``TASK_OPTIONS`` dict of
its restoration module.  ``--task-set KEY=VALUE`` sets KEY for every model of the grid that declares it for the
task's capability; a key that no model of the grid takes, or a value outside the option's rule, is one line
before any work (:func:`check_task_sets`).  The values reach the method through the model's
``restoration_options`` (:func:`apply_task_options`, read back with :func:`option`); the rows record the values
used (defaults included) in their details, and a non-default value is part of the rows' setting (``mask`` field
and the task's folder), so runs with different options never share a leaderboard row.

The built-in options:

- ``resamplings`` / ``jump_length``: RePaint's r and j (Lugmayr et al. 2022, Sec. 4.2 and Algorithm 1 with the
  jump schedule): r resampling rounds per position, jumps of j steps; NFE ~ r x T.  Default r = j = 10, the
  paper's.  DDPM, VDM and latent diffusion (completion; DDPM and VDM colourisation too).
- ``particles``: the PixelCNN's importance-resampling completion for masks that are not a raster-order prefix
  (in its plugin's completion module): K proposals per image, one kept.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from genbench.tasks.base import TaskError

__all__ = ["REPAINT_OPTIONS", "TaskOption", "apply_task_options", "check_task_sets", "declared_options", "option",
           "parse_task_sets", "repaint_details", "repaint_options"]


@dataclass(frozen=True)
class TaskOption:
    """A whole-number option of a restoration method: at least ``minimum``; ``meaning`` and ``example`` make the
    messages; ``capabilities`` the tasks' capabilities it applies to (``complete``, ``denoise``, ``colourise``)."""

    meaning: str
    example: int
    minimum: int = 1
    capabilities: frozenset[str] = frozenset({"complete"})

    def parse(self, key: str, text: str) -> int:
        """``text`` as this option's value, or TaskError in one line."""
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < self.minimum:
            raise TaskError(f"--task-set {key}={text}: {key} must be a whole number >= {self.minimum} "
                            f"({self.meaning}); use e.g. --task-set {key}={self.example}")
        return value


REPAINT_OPTIONS: dict[str, TaskOption] = {
    "resamplings": TaskOption("RePaint's r: resampling rounds per position, Lugmayr et al. 2022", 10,
                              capabilities=frozenset({"complete", "colourise"})),
    "jump_length": TaskOption("RePaint's j: reverse steps between jumps back, Lugmayr et al. 2022", 10,
                              capabilities=frozenset({"complete", "colourise"})),
}


def declared_options(model_cls: type) -> dict[str, TaskOption]:
    """The options a model class's restoration methods take (``task_options``, or its restoration module's
    ``TASK_OPTIONS``); {} when none."""
    found: dict[str, TaskOption] = dict(getattr(model_cls, "task_options", None) or {})
    module = getattr(model_cls, "restoration_module", "")
    if module:
        found.update(getattr(importlib.import_module(module), "TASK_OPTIONS", {}) or {})
    return found


def parse_task_sets(sets: Iterable[str]) -> dict[str, str]:
    """``--task-set KEY=VALUE`` texts -> {key: value text}; a text without ``=`` or a key given twice fails in
    one line."""
    out: dict[str, str] = {}
    for text in sets:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise TaskError(f"--task-set {text!r}: write KEY=VALUE, e.g. --task-set resamplings=5")
        if key in out:
            raise TaskError(f"--task-set {key} is given twice ({key}={out[key]} and {text}); give it once")
        out[key] = value.strip()
    return out


def check_task_sets(sets: dict[str, str], task_name: str, capability: str,
                    model_classes: Sequence[type]) -> dict[str, int]:
    """The ``--task-set`` values checked against the grid's models: each key must be an option of some model's
    method for ``capability`` and its value within the option's rule.  Returns {key: value}."""
    if not sets:
        return {}
    takers: dict[str, list[tuple[str, TaskOption]]] = {}
    known: dict[str, list[str]] = {}
    for cls in model_classes:
        for key, opt in declared_options(cls).items():
            known.setdefault(key, []).append(cls.name)
            if capability in opt.capabilities:
                takers.setdefault(key, []).append((cls.name, opt))
    values: dict[str, int] = {}
    for key, text in sets.items():
        if key not in takers:
            if key in known:
                raise TaskError(f"--task-set {key}: {', '.join(sorted(set(known[key])))} take {key} for other tasks "
                                f"than --task {task_name}; drop it")
            offered = sorted(takers)
            choices = f"the options here: {', '.join(offered)}" if offered else \
                f"no model of the grid takes options for --task {task_name}"
            raise TaskError(f"--task-set {key}: no model of the grid takes {key!r} for --task {task_name} ({choices})")
        parsed = {opt.parse(key, text) for _, opt in takers[key]}
        values[key] = parsed.pop()
    return values


def apply_task_options(model: Any, values: dict[str, int], capability: str) -> dict[str, int]:
    """Give ``model`` the values of ``values`` its methods declare for ``capability`` (``restoration_options``);
    returns those it took."""
    mine = {k: v for k, v in values.items()
            if k in (opts := declared_options(type(model))) and capability in opts[k].capabilities}
    model.restoration_options = mine
    return mine


def option(model: Any, key: str, default: int) -> int:
    """The value of option ``key`` that ``model`` was given (``apply_task_options``), else ``default``."""
    return int((getattr(model, "restoration_options", None) or {}).get(key, default))


def repaint_options(model: Any, resamplings: int, jump_length: int) -> tuple[int, int]:
    """RePaint's (r, j) for ``model``: the ``--task-set`` values it was given, else the defaults passed in (the
    calling completion module's, the paper's r = j = 10)."""
    return option(model, "resamplings", resamplings), option(model, "jump_length", jump_length)


def repaint_details(capability: str, settings: tuple[int, int], method: str, denoise_method: str) -> dict[str, object]:
    """What a diffusion family's task rows record: the method's name and, for completion and colourisation,
    RePaint's r and j (``settings``); denoising (SDEdit) has none."""
    if capability == "denoise":
        return {"method": denoise_method}
    r, j = settings
    return {"method": method, "resamplings": r, "jump_length": j}
