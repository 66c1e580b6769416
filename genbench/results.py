"""Tidy results: one measurement per row, with the provenance a reader needs to reproduce it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.metrics.base import Measurement

COLUMNS = [
    "run_id", "model", "dataset", "seed", "preset", "metric", "value", "stderr", "unit", "higher_is_better",
    "kind", "n", "sampler", "extractor", "extractor_sha256", "reference", "split", "details", "versions",
    "config_hash", "device", "timestamp",
]


def measurement_row(m: Measurement, cell: dict[str, Any]) -> dict[str, Any]:
    """A measurement plus the cell's provenance as one flat row (details/versions as JSON text)."""
    row = {**cell, **dataclasses.asdict(m)}
    row["details"] = json.dumps(m.details, sort_keys=True, default=str)
    row["versions"] = json.dumps(cell.get("versions", {}), sort_keys=True)
    return {c: row.get(c) for c in COLUMNS}


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def load_runs(runs_dir: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every finished run's rows (one frame) and every run's status (done or failed, with its error)."""
    frames, statuses = [], []
    for status_path in sorted(Path(runs_dir).glob("*/status.json")):
        status = json.loads(status_path.read_text())
        status["run_dir"] = str(status_path.parent)
        statuses.append(status)
        rows_path = status_path.parent / "rows.csv"
        if status.get("state") == "done" and rows_path.exists():
            frames.append(pd.read_csv(rows_path, keep_default_na=True))
    frame = pd.concat(frames, ignore_index=True) if frames else rows_frame([])
    return frame, statuses
