"""The tidy rows as the leaderboards read them: clean keys, a role per row, one entry per preset."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

KEYS = ("model", "dataset", "sampler", "kind", "extractor", "metric", "run_id", "unit", "preset", "role")


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def prepared(frame: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Rows with string keys cleaned (NaN -> "") and float values.

    ``role`` is what the run wrote ("model" where it wrote none); ``baseline`` (a model
    name, optional) marks that model's rows "baseline" as well.  A model run with several
    presets on one data set becomes one leaderboard entry per preset, named
    ``model [preset]``: numbers from different budgets are never averaged.
    """
    df = frame.copy()
    for c in KEYS:
        df[c] = [_clean(v) for v in df[c]] if c in df else ""
    df["role"] = df["role"].replace("", "model")
    if baseline:
        df.loc[df["model"] == baseline, "role"] = "baseline"
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["stderr"] = pd.to_numeric(df.get("stderr"), errors="coerce") if "stderr" in df else np.nan
    if not df.empty:
        several = df.groupby(["dataset", "model"])["preset"].transform("nunique") > 1
        df.loc[several, "model"] = df.loc[several, "model"] + " [" + df.loc[several, "preset"] + "]"
    return df
