"""95% intervals of a leaderboard cell: one run's own standard error, or an interval over training seeds.

A cell holds one value per run (training seed) v_i, each with the standard error s_i its
metric recorded for the run's own sampling noise (a bootstrap over samples, the test-split
standard error of a likelihood...).  A run that drew one sampler setting k times (sampling
seeds) counts as one value: the mean of its draws, with standard error sqrt(sum s_j^2) / k.

* **One run**: mean ± z_{0.975} · s with z_{0.975} = 1.959964 (normal approximation of the
  metric's sampling distribution).  No recorded s (or s = 0): no interval.
* **n >= 2 runs**: the wider of two intervals,
  mean ± max(t_{0.975, n-1} · S / sqrt(n), z_{0.975} · sqrt(mean_i s_i^2 / n)),
  where S is the sample standard deviation of the v_i.  Under the random-effects model
  v_i = mu + u_i + e_i (u_i ~ N(0, tau^2): the training seed; e_i ~ N(0, s_i^2): the run's
  sampling noise) each value already carries its sampling noise, Var(v_i) = tau^2 + s_i^2, so the
  Student-t interval over seeds covers both sources and is exact whatever tau is; but with two or
  three seeds S is itself noisy and can fall below the sampling noise the runs measured, and the
  mean of n runs is never known better than sqrt(mean s_i^2 / n), whose normal interval is exact
  when tau = 0.  Taking the wider keeps coverage at or above 95% in both limits (a Monte Carlo
  check is in the tests).  Without recorded s_i this is the plain Student-t interval.

Values identical to the last bit (a count, a step number) get a zero-width interval, which the
tables print without a ±.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from genbench.report.cells import Cell

#: two-sided 95% quantile of the standard normal
Z95 = 1.959963984540054
#: how a cell's interval was made: "normal" (one run, 1.96 standard errors), "t" (over seeds), "" (none)
Method = Literal["normal", "t", ""]


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% half-width (nan: none), the number of values and how the half-width was made."""

    mean: float
    half: float
    n: int
    method: Method
    stderr: float = float("nan")  # mean within-run standard error (nan where no run recorded one)


def _t975(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    return float(_t975(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def seed_interval(values: np.ndarray | pd.Series, stderrs: np.ndarray | pd.Series | None = None) -> Interval:
    """The 95% interval of the mean of ``values`` (one per run) given each run's standard error ``stderrs``
    (nan where none was recorded); see the module docstring for the two cases."""
    v = np.asarray(values, dtype=float)
    s = np.full(len(v), np.nan) if stderrs is None else np.asarray(stderrs, dtype=float)
    keep = ~np.isnan(v)
    v, s = v[keep], s[keep]
    n = len(v)
    if n == 0:
        return Interval(float("nan"), float("nan"), 0, "")
    known = s[np.isfinite(s) & (s >= 0)]
    se = float(known.mean()) if len(known) else float("nan")
    mean = float(v.mean())
    if n == 1:
        if not len(known):
            return Interval(mean, float("nan"), 1, "", se)
        return Interval(mean, Z95 * float(known[0]), 1, "normal", se)
    sd = 0.0 if np.ptp(v) == 0 else float(v.std(ddof=1))  # identical values: no rounding noise in S
    within = float(np.mean(known ** 2)) if len(known) else 0.0
    return Interval(mean, max(_t975(n - 1) * sd, Z95 * math.sqrt(within)) / math.sqrt(n), n, "t", se)


def run_values(rows: pd.DataFrame, by: str = "run_id", sort: bool = False) -> pd.DataFrame:
    """One value per run (``by``): the mean of its rows (several only where it drew several sampling seeds),
    with the standard error of that mean, sqrt(sum s_j^2) / k (nan if any of its rows lacks one)."""
    if rows.empty:
        return pd.DataFrame({"value": [], "stderr": []})
    se = pd.to_numeric(rows["stderr"], errors="coerce") if "stderr" in rows else pd.Series(np.nan, index=rows.index)
    g = rows.assign(_v=pd.to_numeric(rows["value"], errors="coerce"), _s2=se ** 2).groupby(by, sort=sort)
    k = g["_v"].count().clip(lower=1)
    stderr = np.sqrt(g["_s2"].sum(min_count=1)) / k
    complete = g["_s2"].count() == g["_v"].count()  # every draw recorded its standard error
    return pd.DataFrame({"value": g["_v"].mean(), "stderr": stderr.where(complete)})


def per_run(rows: pd.DataFrame, sort: bool = False) -> pd.Series:
    """One value per run: the mean of the run's rows (several only where it drew several sampling seeds)."""
    return rows.groupby("run_id", sort=sort)["value"].mean()


def interval_cell(values: pd.Series | np.ndarray, stderrs: pd.Series | np.ndarray | None = None) -> Cell:
    """A cell holding the mean of ``values`` (NaN dropped), its 95% half-width (:func:`seed_interval`), how many
    values it has, how the interval was made and the mean within-run standard error."""
    iv = seed_interval(values, stderrs)
    return Cell(iv.mean, iv.half, iv.n, method=iv.method, stderr=iv.stderr)


def rows_cell(rows: pd.DataFrame, by: str = "run_id") -> Cell:
    """The cell of a set of tidy rows: one value per ``by`` (:func:`run_values`), then :func:`interval_cell`."""
    per = run_values(rows, by)
    return interval_cell(per["value"], per["stderr"])
