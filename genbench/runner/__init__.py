"""The runner: one cell (model, data set, seed, config) from training to tidy rows.

Rooms: ``cells`` (planning and orchestrating a cell), ``training`` (the training loop),
``sampling`` (drawing and saving samples), ``curves`` (sample metrics during training),
``device`` (device choice, deterministic kernels, random state).
"""
from __future__ import annotations

from genbench.data.files import resolve_dataset
from genbench.naming import safe_name
from genbench.runner.cells import CellPlan, CellResult, CellSpec, Runner
from genbench.runner.device import deterministic_kernels, pick_device
from genbench.runner.sampling import draw_samples, save_grid
from genbench.runner.training import DivergenceError, Trainer

__all__ = [
    "CellPlan", "CellResult", "CellSpec", "DivergenceError", "Runner", "Trainer", "deterministic_kernels",
    "draw_samples", "pick_device", "resolve_dataset", "safe_name", "save_grid",
]
