"""Derived columns: FID / floor (delta method), KID - floor, FID test - train, each paired within its own run."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from genbench.metrics.display import MetricDisplay
from genbench.report.derived import (FID_GAP, FID_OVER_FLOOR, FID_TEST, KID_MINUS_FLOOR, derived_displays,
                                     derived_rows)
from genbench.report.rows import prepared


def _row(run: str, metric: str, value: float, stderr: float | None, sampler: str = "s", sampling_seed: int = 0,
         extractor: str = "classifier") -> dict:
    return {"run_id": run, "model": "m", "dataset": "d", "seed": 0, "preset": "quick", "metric": metric, "value": value,
            "stderr": stderr, "sampler": sampler, "sampling_seed": sampling_seed, "extractor": extractor, "n": 1000,
            "details": "{}", "kind": "", "unit": ""}


def test_ratio_standard_error_matches_monte_carlo() -> None:
    """Delta method se(F/L) against the spread of 200k simulated ratios (relative errors ~5%: within 2%)."""
    f, sf, fl, sfl = 6.6, 0.3, 3.4, 0.15
    df = prepared(pd.DataFrame([_row("a", "fid", f, sf), _row("a", "fid_floor", fl, sfl, sampler="real data")]))
    (r,) = derived_rows(df).itertuples()
    assert r.metric == FID_OVER_FLOOR and r.value == pytest.approx(f / fl)
    rng = np.random.default_rng(1)
    sims = rng.normal(f, sf, 200_000) / rng.normal(fl, sfl, 200_000)
    assert r.stderr == pytest.approx(float(sims.std()), rel=0.02)
    assert "delta method" in json.loads(r.details)["method"]


def test_each_draw_is_paired_with_its_own_runs_floor_and_differences_add_variances() -> None:
    rows = [_row("a", "fid", 4.0, 0.2), _row("a", "fid", 5.0, 0.2, sampling_seed=1), _row("a", "fid_floor", 2.0, 0.1, "real data"),
            _row("b", "fid", 9.0, None), _row("b", "fid_floor", 3.0, 0.1, "real data"),
            _row("a", "kid", 0.004, 0.0003), _row("a", "kid_floor", 0.001, 0.0004, "real data"),
            _row("c", "fid", 1.0, 0.1)]  # no floor in run c: no ratio
    out = derived_rows(prepared(pd.DataFrame(rows)))
    ratios = out[out["metric"] == FID_OVER_FLOOR]
    assert list(zip(ratios["run_id"], ratios["value"])) == [("a", 2.0), ("a", 2.5), ("b", 3.0)]
    assert math.isnan(ratios["stderr"].iloc[2])  # a missing standard error on one side leaves none
    (kid,) = out[out["metric"] == KID_MINUS_FLOOR].itertuples()
    assert kid.value == pytest.approx(0.003) and kid.stderr == pytest.approx(0.0005)


def test_fid_gap_pairs_test_and_train_fid_of_the_same_draw() -> None:
    """The gap's standard error: the paired bootstrap's where the train-FID row states one, else independence."""
    paired = {**_row("a", "fid_train", 5.5, 0.4, sampler="t"), "details": json.dumps({"gap_stderr": 0.1})}
    rows = [_row("a", "fid", 4.0, 0.3), _row("a", "fid_train", 1.0, 0.4), _row("a", "fid", 6.0, 0.3, sampler="t"), paired]
    out = derived_rows(prepared(pd.DataFrame(rows)))
    gap = out[out["metric"] == FID_GAP].set_index("sampler")
    assert gap.loc["s", "value"] == pytest.approx(3.0) and gap.loc["t", "value"] == pytest.approx(0.5)
    assert gap.loc["s", "stderr"] == pytest.approx(0.5) and gap.loc["t", "stderr"] == pytest.approx(0.1)
    assert sorted(out.loc[out["metric"] == FID_TEST, "value"]) == [4.0, 6.0]  # FID vs test beside vs train


def test_displays_follow_their_metric_with_its_scale(displays) -> None:
    out = derived_displays(displays)
    names = list(out)
    assert names[names.index("fid") + 1] == FID_OVER_FLOOR and names[names.index("kid") + 1] == KID_MINUS_FLOOR
    kid = displays["kid"]
    assert out[KID_MINUS_FLOOR].scale == kid.scale and out[KID_MINUS_FLOOR].title.startswith("KID − floor")
    assert out[FID_OVER_FLOOR].title == "FID / floor" and out[FID_OVER_FLOOR].higher is False
    no_train = {k: v for k, v in displays.items() if k != "fid_train"}
    assert FID_GAP not in derived_displays(no_train)  # no FID against the training split: no gap column
    train = {**no_train, "fid_train": MetricDisplay("FID vs train", "memorisation", per_extractor=True)}
    names = list(derived_displays(train))
    assert names[names.index("fid_train") + 1:names.index("fid_train") + 3] == [FID_TEST, FID_GAP]
