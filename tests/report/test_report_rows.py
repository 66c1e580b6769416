"""Rows as the boards read them: clean keys, a role per row ("model" when none written), one entry per preset."""
from __future__ import annotations

import pandas as pd

from genbench.report.rows import prepared


def _frame(**columns) -> pd.DataFrame:
    base = {"run_id": ["a", "b", "c"], "model": ["vae", "vae", "independent"], "dataset": ["d"] * 3,
            "metric": ["fid"] * 3, "value": ["1.5", 2, None], "preset": ["quick"] * 3}
    return pd.DataFrame({**base, **columns})


def test_keys_are_strings_and_values_floats() -> None:
    df = prepared(_frame(kind=[None, float("nan"), "exact"]))
    assert list(df["kind"]) == ["", "", "exact"] and list(df["sampler"]) == ["", "", ""]
    assert df["value"].iloc[0] == 1.5 and df["value"].isna().iloc[2] and df["stderr"].isna().all()


def test_role_defaults_to_model_and_the_baseline_option_adds_one() -> None:
    assert list(prepared(_frame())["role"]) == ["model"] * 3  # runs written before rows carried a role
    assert list(prepared(_frame(role=[None, "model", "baseline"]))["role"]) == ["model", "model", "baseline"]
    assert list(prepared(_frame(), baseline="independent")["role"]) == ["model", "model", "baseline"]


def test_several_presets_of_one_model_become_separate_entries() -> None:
    df = prepared(_frame(preset=["quick", "tiny", "tiny"]), baseline="independent")
    assert list(df["model"]) == ["vae [quick]", "vae [tiny]", "independent"]
    assert df["role"].iloc[2] == "baseline"
    assert prepared(_frame().iloc[0:0]).empty
