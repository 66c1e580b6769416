"""Mean ± 95% Student-t interval over runs; a run's sampling seeds count as one value."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genbench.report.intervals import ci95, interval_cell, per_run


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
