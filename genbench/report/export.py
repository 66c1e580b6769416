"""The machine-readable outputs: results.csv (the tidy rows, then the derived rows) and results.json (rows,
leaderboard cells with their intervals and marks, flags, failed cells, commands)."""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from genbench.report.cells import Board
from genbench.report.derived import derived_rows

FAILED_FIELDS = ("run_id", "model", "dataset", "seed", "preset", "state", "error")


def table_records(board: Board) -> list[dict[str, Any]]:
    """Every leaderboard cell as a flat record."""
    out = []
    for t in board.tables:
        for (r, c), cell in sorted(t.cells.items()):
            row, col = t.rows[r], t.columns[c]
            out.append({
                "dataset": board.dataset, "table": t.name, "model": row.model, "sampler": row.sampler, "role": row.role,
                "metric": col.metric, "kind": col.kind, "extractor": col.extractor, "column": col.title,
                "higher_is_better": col.higher, "scale": col.scale, "mean": cell.mean,
                "ci95": None if math.isnan(cell.ci) else cell.ci, "interval": cell.method or None,
                "stderr": None if math.isnan(cell.stderr) else cell.stderr, "seeds": cell.seeds,
                "best": cell.mark == "best", "tied": cell.mark == "tied", "invalid": cell.invalid,
                "ranked": row.role != "floor" and not row.apart, "setting": row.tag or t.setting, "flag": row.flag or None,
            })
    return out


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def with_derived_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The tidy rows followed by the rows derived from them (FID / floor, KID - floor, FID test - train), each
    computed within its data set; a derived row's ``details`` names what it came from and how."""
    if frame.empty or "metric" not in frame:
        return frame
    keys = frame.assign(**{c: frame[c].fillna("") for c in ("extractor", "sampler") if c in frame})
    extra = [derived_rows(g) for _, g in keys.groupby("dataset", sort=True)] if "dataset" in keys else [derived_rows(keys)]
    extra = [e for e in extra if not e.empty]
    return pd.concat([frame, *extra], ignore_index=True) if extra else frame


def results_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def results_json(frame: pd.DataFrame, boards: dict[str, Board], failed: list[dict[str, Any]], commands: list[str],
                 generated: str, filters: dict[str, Any]) -> str:
    """results.json: when and how it was made, the leaderboard cells, invalid likelihoods, failed cells,
    the commands that reproduce the runs and every tidy row."""
    return json.dumps(json_safe({
        "generated": generated, "filters": filters,
        "leaderboard": [r for b in boards.values() for r in table_records(b)],
        "invalid": [i for b in boards.values() for i in b.invalid],
        "memorisation": [{"dataset": b.dataset, **f} for b in boards.values() for f in b.memorisation],
        "failed": [{k: s.get(k) for k in FAILED_FIELDS} for s in failed],
        "commands": commands,
        "rows": json.loads(frame.to_json(orient="records")),
    }), indent=1, ensure_ascii=False) + "\n"
