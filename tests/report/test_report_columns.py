"""Columns from the metrics' declared displays: placement, order, titles; undeclared metrics from their rows."""
from __future__ import annotations

from typing import Any

import pandas as pd

from genbench.metrics.display import MetricDisplay
from genbench.report.columns import board_displays, build_columns
from genbench.report.rows import prepared


def _rows(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {"run_id": "r", "model": "m", "dataset": "d", "seed": 0, "preset": "quick", "kind": "", "sampler": "",
            "extractor": "", "unit": "", "higher_is_better": None, "n": None, "reference": ""}
    return prepared(pd.DataFrame([{**base, **r} for r in rows]))


def _columns(df: pd.DataFrame, displays: dict[str, MetricDisplay]) -> dict[str, list[tuple[str, str]]]:
    cols = build_columns(df, board_displays(df, displays), displays)
    return {t: [(c.metric, c.title) for c in cs] for t, cs in cols.items()}


def test_likelihood_kinds_exact_first_then_tightest_first(displays) -> None:
    """The standard digits leaderboard's order (exact, IWAE-100, ELBO, VLB) without naming a bound."""
    bpd = dict(metric="bits_per_dim", unit="bits/dim", higher_is_better=False)
    df = _rows({**bpd, "model": "ddpm", "kind": "VLB", "value": 4.491}, {**bpd, "model": "ldm", "kind": "ELBO", "value": 5.33},
               {**bpd, "model": "vae", "kind": "ELBO", "value": 1.861}, {**bpd, "model": "vae", "kind": "IWAE-100", "value": 1.78},
               {**bpd, "model": "pixelcnn", "kind": "exact", "value": 1.740},
               {"metric": "val_bits_per_dim", "model": "vae", "kind": "ELBO", "value": 1.85, "unit": "bits/dim"},
               {"metric": "val_bits_per_dim", "model": "ddpm", "kind": "VLB", "value": 6.2, "unit": "bits/dim"})
    assert [t for _, t in _columns(df, displays)["likelihood"]] == [
        "bits/dim (exact)", "bits/dim (IWAE-100)", "bits/dim (ELBO)", "bits/dim (VLB)", "val bits/dim (primary estimate)"]


def test_declared_order_tables_and_scale(displays) -> None:
    df = _rows({"metric": "latency", "sampler": "s", "value": 0.01}, {"metric": "images_per_second", "sampler": "s", "value": 9.0},
               {"metric": "kid", "sampler": "s", "value": 0.1, "extractor": "classifier"},
               {"metric": "fid", "sampler": "s", "value": 3.0, "extractor": "classifier"},
               {"metric": "fid_floor", "sampler": "real data", "value": 1.0, "extractor": "classifier"},
               {"metric": "train_steps", "value": 10.0}, {"metric": "data_entropy", "value": 1.5, "kind": "exact"})
    cols = build_columns(df, board_displays(df, displays), displays)
    assert [c.metric for c in cols["quality"]] == ["fid", "kid"]  # floors and the entropy are reference rows
    assert [c.metric for c in cols["cost"]] == ["images_per_second", "latency", "train_steps"]
    assert cols["likelihood"] == []
    latency = cols["cost"][1]
    assert (latency.title, latency.scale, latency.higher, latency.per_model) == ("ms/image (batch 1)", 1e3, False, False)
    assert cols["cost"][2].higher is None and cols["cost"][2].per_model


def test_extractor_names_the_column_only_when_there_are_several(displays) -> None:
    one = _rows({"metric": "fid", "sampler": "s", "value": 3.0, "extractor": "classifier"},
                {"metric": "confident_share", "sampler": "s", "value": 0.9, "extractor": "classifier"})
    assert [t for _, t in _columns(one, displays)["quality"]] == ["FID", "confident share"]
    two = _rows({"metric": "fid", "sampler": "s", "value": 3.0, "extractor": "classifier"},
                {"metric": "fid", "sampler": "s", "value": 9.0, "extractor": "inception"},
                {"metric": "kid", "sampler": "s", "value": 0.1, "extractor": "classifier"},
                {"metric": "confident_share", "sampler": "s", "value": 0.9, "extractor": "classifier"})
    kid = displays["kid"].title
    assert [t for _, t in _columns(two, displays)["quality"]] == [
        "FID [classifier]", "FID [inception]", f"{kid} [classifier]", "confident share"]


def test_undeclared_metrics_are_placed_from_their_rows(displays) -> None:
    df = _rows({"metric": "sharpness", "sampler": "s", "value": 0.5, "higher_is_better": True},
               {"metric": "sharpness_floor", "sampler": "real data", "value": 0.7, "higher_is_better": True},
               {"metric": "weird_bpd", "value": 3.0, "unit": "bits/dim", "higher_is_better": False},
               {"metric": "a_cost", "value": 3.0, "unit": "s"},
               {"metric": "fid", "sampler": "s", "value": 3.0, "extractor": "classifier"})
    shown = board_displays(df, displays)
    assert shown["sharpness_floor"].floor_of == "sharpness" and shown["sharpness"].higher is True
    assert _columns(df, displays) == {"quality": [("fid", "FID"), ("sharpness", "sharpness")],
                                      "likelihood": [("weird_bpd", "weird_bpd")], "memorisation": [],
                                      "cost": [("a_cost", "a_cost")]}


def test_declared_display_wins_over_the_rows(displays) -> None:
    df = _rows({"metric": "nfe", "sampler": "s", "value": 1.0, "higher_is_better": True})
    (col,) = build_columns(df, board_displays(df, displays), displays)["cost"]
    assert col.higher is False and col.title == "NFE"


def test_kid_factor_per_extractor_from_its_values_and_stated_in_the_title(displays) -> None:
    """Whitened random-CNN KID (~1e-3) is shown x10^3; the classifier's (~12) as it is, never as "12.6k"; its
    floor row and KID − floor share the factor of their extractor's KID column."""
    from genbench.report.board import build_board
    from genbench.report.formatting import display_rows

    kid = dict(sampler="s", unit="", higher_is_better=False, n=1000, stderr=0.0)
    df = _rows({**kid, "metric": "kid", "value": 12.6, "stderr": 0.4, "extractor": "classifier"},
               {**kid, "metric": "kid_floor", "sampler": "real data", "value": 0.21, "stderr": 0.3, "extractor": "classifier"},
               {**kid, "metric": "kid", "value": 0.0042, "stderr": 0.0002, "extractor": "random-cnn"},
               {**kid, "metric": "kid_floor", "sampler": "real data", "value": -0.0001, "stderr": 0.0003,
                "extractor": "random-cnn"})
    cols = build_columns(df, board_displays(df, displays), displays)["quality"]
    assert [(c.title, c.scale) for c in cols] == [("KID [classifier]", 1.0), ("KID ×10³ [random-cnn]", 1e3)]
    (quality,) = [t for t in build_board(df, "d", displays).tables if t.name == "quality"]
    header, body = display_rows(quality)
    assert header[3:] == ["KID [classifier] ↓", "KID ×10³ [random-cnn] ↓", "KID − floor [classifier] ↓",
                          "KID − floor ×10³ [random-cnn] ↓"]
    model, floor = ([cell.text for cell in row] for row in body)
    # 1.96 standard errors; KID − floor's is sqrt(se_a^2 + se_b^2), at its extractor's factor
    assert model[3:] == ["12.60 ± 0.78", "4.20 ± 0.39", "12.39 ± 0.98", "4.30 ± 0.71"]
    assert floor[0].startswith("real data") and floor[3:5] == ["0.21 ± 0.59", "-0.10 ± 0.59"]
