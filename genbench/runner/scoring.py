"""Scoring a cell's samples: the measurements every run folder gets, shared by a trained cell (``cells.py``)
and by samples made elsewhere (``external.py``, ``genbench eval``), so both write the same tidy rows."""
from __future__ import annotations

import logging
from collections.abc import Container
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from genbench.io import atomic_write_json, atomic_write_text
from genbench.metrics.base import EvalContext, Measurement
from genbench.progress import current as current_progress
from genbench.results import measurement_row, rows_frame
from genbench.runner.precision import tf32_mode

log = logging.getLogger("genbench")


def data_measurements(ctx: EvalContext) -> list[Measurement]:
    """Rows about the data alone: its true entropy, where the data set knows it (a bound no model goes below)."""
    data = ctx.data
    if data.entropy_bits_per_dim is None:
        return []
    return [Measurement(
        "data_entropy", data.entropy_bits_per_dim, "bits/dim", None, kind="exact",
        reference=data.split_id, details={"meaning": "true entropy of the data distribution: no model may go below"},
    )]


def metric_measurements(ctx: EvalContext, needs: Container[str] | None = None) -> list[Measurement]:
    """Every registered metric that applies to ``ctx.model`` (and, when ``needs`` is given, whose ``needs`` is
    in it: samples made elsewhere have no model to draw from or count), in the registry's order."""
    out: list[Measurement] = []
    for name, entry in ctx.registry.metrics:
        metric = entry.cls()
        if needs is not None and metric.needs not in needs:
            continue
        if metric.applies_to(ctx.model):
            current_progress().phase(f"metric {name}")  # the cell's progress; logged at INFO outside a cell
            out.extend(metric.compute(ctx))
    return out


def machine_fields(device: torch.device | str) -> dict[str, Any]:
    """The provenance every row of a cell shares about where and when it was measured: device, TF32 setting
    (``tf32_mode``), intra-op threads and a UTC timestamp (``genbench run`` and ``genbench eval`` alike)."""
    return {"device": str(device), "tf32": tf32_mode(device), "threads": torch.get_num_threads(),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_rows(run_dir: Path, measurements: list[Measurement], cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy rows of ``measurements`` with the cell's provenance, written atomically to rows.json (the source
    of truth) and rows.csv."""
    rows = [measurement_row(m, cell) for m in measurements]
    atomic_write_json(run_dir / "rows.json", rows)
    atomic_write_text(run_dir / "rows.csv", rows_frame(rows).to_csv(index=False))
    return rows
