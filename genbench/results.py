"""Tidy results: one measurement per row, with the provenance a reader needs to reproduce it.

``role`` is the model's role ("model", or "baseline" for reference points); ``sampling_seed`` which
independent draw of the sampler setting the row measures (0 when the config draws once).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import pandas as pd

from genbench.metrics.base import Measurement

COLUMNS = [
    "run_id", "model", "role", "dataset", "seed", "preset", "metric", "value", "stderr", "unit", "higher_is_better",
    "kind", "n", "sampler", "sampling_seed", "extractor", "extractor_sha256", "reference", "split", "details",
    "versions", "config_hash", "device", "precision", "tf32", "threads", "timestamp",
]


def measurement_row(m: Measurement, cell: dict[str, Any]) -> dict[str, Any]:
    """A measurement plus the cell's provenance as one flat row (details/versions as JSON text)."""
    row = {**cell, **dataclasses.asdict(m)}
    row["details"] = json.dumps(m.details, sort_keys=True, default=str)
    row["versions"] = json.dumps(cell.get("versions", {}), sort_keys=True)
    return {c: row.get(c) for c in COLUMNS}


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)

