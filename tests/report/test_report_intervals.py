"""95% intervals: one run's 1.96 standard errors; over seeds Student t with the within-run variance as a floor;
a run's sampling seeds count as one value."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genbench.report.intervals import Z95, ci95, interval_cell, per_run, rows_cell, run_values, seed_interval


def test_ci95_matches_student_t_closed_form() -> None:
    # n=3, sd=1, t_{0.975,2} = 4.302652729911275 (tables); half-width = t * sd / sqrt(n)
    assert ci95(np.array([1.0, 2.0, 3.0])) == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    # n=2, (0, 2): sd = sqrt(2), t_{0.975,1} = 12.706204736174698
    assert ci95(np.array([0.0, 2.0])) == pytest.approx(12.706204736174698 * math.sqrt(2) / math.sqrt(2), rel=1e-9)
    assert math.isnan(ci95(np.array([5.0])))
    assert math.isnan(ci95(np.array([5.0, float("nan")])))


def test_interval_cell_drops_nan_and_counts_values() -> None:
    cell = interval_cell(np.array([1.0, float("nan"), 3.0]))
    assert (cell.mean, cell.seeds) == (2.0, 2) and cell.ci == pytest.approx(ci95(np.array([1.0, 3.0])))
    empty = interval_cell(np.array([float("nan")]))
    assert math.isnan(empty.mean) and empty.seeds == 0 and empty.mark == ""


def test_sampling_seeds_of_one_run_are_one_value() -> None:
    rows = pd.DataFrame({"run_id": ["a", "a", "a", "b"], "value": [1.0, 2.0, 3.0, 4.0]})
    means = per_run(rows)
    assert list(means.index) == ["a", "b"] and list(means) == [2.0, 4.0]
    cell = interval_cell(means)
    assert cell.seeds == 2 and cell.mean == 3.0


def test_one_value_per_run_is_the_value_itself() -> None:
    """With one row per run the interval is over the rows exactly (same floats, same order)."""
    values = [0.1 + 0.2, 1e-17, 3.3333333333333335, 7.0]
    rows = pd.DataFrame({"run_id": ["d", "c", "b", "a"], "value": values})
    assert list(per_run(rows)) == values
    assert interval_cell(per_run(rows)).mean == float(np.asarray(values).mean())


def test_one_run_is_mean_plus_minus_1_96_standard_errors() -> None:
    """The VLB row of the standard run: 6.374 with standard error 2.075 -> 6.374 ± 4.067 (z_0.975 = 1.959964)."""
    iv = seed_interval(np.array([6.3739134878835735]), np.array([2.0749975357646093]))
    assert iv.method == "normal" and iv.n == 1
    assert iv.half == pytest.approx(1.959963984540054 * 2.0749975357646093, rel=1e-12)
    assert Z95 == pytest.approx(float(stats.norm.ppf(0.975)), rel=1e-12)
    none = seed_interval(np.array([6.37]), np.array([float("nan")]))
    assert none.method == "" and math.isnan(none.half)


def test_several_seeds_the_wider_of_student_t_and_the_runs_own_noise() -> None:
    v, s = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.1, 0.1])
    # S^2 = 1 > mean s^2 = 0.01: the plain Student t interval (scipy's t.interval as the reference)
    lo, hi = stats.t.interval(0.95, 2, loc=2.0, scale=stats.sem(v))
    assert seed_interval(v, s).half == pytest.approx((hi - lo) / 2, rel=1e-12)
    # seeds closer than their own sampling noise: t S / sqrt(3) = 0.025 < 1.96 sqrt(mean s^2 / 3) = 1.96 sqrt(1 / 3)
    v2, s2 = np.array([5.0, 5.01, 4.99]), np.array([1.0, 1.0, 1.0])
    iv = seed_interval(v2, s2)
    assert iv.method == "t" and iv.half == pytest.approx(1.959963984540054 * math.sqrt(1.0 / 3), rel=1e-9)
    assert iv.stderr == pytest.approx(1.0)
    # identical values and no standard error: zero width (printed without ±), never float noise
    same = seed_interval(np.array([0.99, 0.99, 0.99]))
    assert same.half == 0.0 and same.mean == pytest.approx(0.99)


def test_combined_interval_covers_at_least_95_percent() -> None:
    """Monte Carlo check of the random-effects model v_i = mu + u_i + e_i with 3 seeds: where the training seed
    dominates (tau = 1, s = 0.2) coverage is ~95% (the t interval, exact); where it does not matter (tau = 0,
    s = 1) both intervals are exact, so their wider covers >= 95%.  4000 draws: binomial se 0.0035."""
    rng = np.random.default_rng(0)
    for tau, s, low, high in ((1.0, 0.2, 0.935, 0.965), (0.0, 1.0, 0.945, 1.0)):
        draws = rng.normal(0.0, tau, (4000, 3)) + rng.normal(0.0, s, (4000, 3))
        halves = np.array([seed_interval(d, np.full(3, s)).half for d in draws])
        coverage = float(np.mean(np.abs(draws.mean(axis=1)) <= halves))
        assert low <= coverage <= high, (tau, s, coverage)


def test_sampling_seeds_combine_their_standard_errors() -> None:
    """k draws of one run: mean of the values, standard error sqrt(sum s_j^2) / k; one missing s -> none."""
    rows = pd.DataFrame({"run_id": ["a", "a", "b", "c", "c"], "value": [1.0, 3.0, 5.0, 2.0, 4.0],
                         "stderr": [0.3, 0.4, 0.2, 0.1, float("nan")]})
    per = run_values(rows)
    assert list(per["value"]) == [2.0, 5.0, 3.0]
    assert per["stderr"].iloc[0] == pytest.approx(0.5 / 2) and per["stderr"].iloc[1] == pytest.approx(0.2)
    assert math.isnan(per["stderr"].iloc[2])
    cell = rows_cell(rows.iloc[:2])
    assert cell.method == "normal" and cell.ci == pytest.approx(Z95 * 0.25)
