"""Mean ± 95% confidence interval over runs (training seeds), Student t.

For n values with sample standard deviation s the half-width is
t_{0.975, n-1} · s / sqrt(n) (the two-sided 95% interval of a normal mean with unknown
variance).  A run that drew one sampler setting several times (sampling seeds) counts as
one value: the mean of its draws.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from genbench.report.cells import Cell


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def interval_cell(values: pd.Series | np.ndarray) -> Cell:
    """A cell holding the mean of ``values`` (NaN dropped), its 95% half-width and how many values it has."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return Cell(float("nan"))
    return Cell(float(v.mean()), ci95(v), len(v))


def per_run(rows: pd.DataFrame, sort: bool = False) -> pd.Series:
    """One value per run: the mean of the run's rows (several only where it drew several sampling seeds)."""
    return rows.groupby("run_id", sort=sort)["value"].mean()
