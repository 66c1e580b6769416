"""Restoration methods (``genbench.tasks``) that a plugin implements as plain functions of one module of its own.

A model class mixes in :class:`RestorationModule`, names the module in ``restoration_module`` and declares what it
supports in ``capabilities`` (only declared capabilities are used: ``genbench.model.supports``).  The module
defines, for each declared capability::

    complete(model, x, known_mask, generator) -> Tensor      completion_nfe(model, known_mask) -> int | None
    denoise(model, y, sigma, generator) -> Tensor            denoise_nfe(model, sigma) -> int | None
    colourise(model, grey, generator) -> Tensor              colourise_nfe(model) -> int | None

An ``*_nfe`` function it leaves out means "not counted" (no NFE row).  Optionally, ``TASK_OPTIONS`` (a dict of
``genbench.tasks.options.TaskOption``: what ``--task-set`` may set; the values arrive in the model's
``restoration_options``, read with ``genbench.tasks.options.option``) and ``details(model, capability, known_mask)
-> dict`` (what the rows' details record: the options used, defaults included).
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import Tensor


class RestorationModule:
    """Mixin: ``complete`` / ``denoise`` / ``colourise`` and their NFE counts, delegated to ``restoration_module``."""

    #: import path of the plugin's module with the functions above (its completion.py)
    restoration_module: ClassVar[str] = ""
    #: ``--task-set`` values for the module's functions (``genbench.tasks.options.apply_task_options``)
    restoration_options: dict[str, int] = {}

    def _restoration(self) -> ModuleType:
        if not self.restoration_module:
            raise TypeError(f"{type(self).__name__} mixes in RestorationModule but names no restoration_module")
        return importlib.import_module(self.restoration_module)

    def _count(self, name: str, *args: Any) -> int | None:
        fn = getattr(self._restoration(), name, None)
        return None if fn is None else fn(self, *args)

    def complete(self, x: Tensor, known_mask: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return self._restoration().complete(self, x, known_mask, generator)

    def completion_nfe(self, known_mask: Tensor) -> int | None:
        return self._count("completion_nfe", known_mask)

    def denoise(self, x: Tensor, sigma: float, *, generator: torch.Generator | None = None) -> Tensor:
        return self._restoration().denoise(self, x, sigma, generator)

    def denoise_nfe(self, sigma: float) -> int | None:
        return self._count("denoise_nfe", sigma)

    def colourise(self, grey: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return self._restoration().colourise(self, grey, generator)

    def colourise_nfe(self) -> int | None:
        return self._count("colourise_nfe")

    def restoration_details(self, capability: str, known_mask: Tensor) -> dict[str, Any]:
        """The module's ``details(model, capability, known_mask)`` for the rows, or {}."""
        fn = getattr(self._restoration(), "details", None)
        return {} if fn is None else dict(fn(self, capability, known_mask))
