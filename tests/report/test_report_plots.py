"""Figures: the Pareto front, the FID axis scale, label placement, baselines drawn by their role."""
from __future__ import annotations

from pathlib import Path

from genbench.report.plots import CostPoint, cost_points, fid_axis_is_log, pareto_front, quality_cost_png


def test_pareto_front_closed_form() -> None:
    pts = [CostPoint("a", "", 1.0, 10.0), CostPoint("b", "", 2.0, 5.0), CostPoint("c", "", 3.0, 6.0),
           CostPoint("d", "", 0.5, 20.0), CostPoint("e", "", 4.0, 1.0), CostPoint("f", "", 2.0, 5.0),
           CostPoint("g", "", float("nan"), 0.1)]
    front = pareto_front(pts)
    # c is dominated by b (faster and better); f ties b exactly and stays; g has no cost
    assert [p.model for p in front] == ["d", "a", "b", "f", "e"]


def test_fid_axis_turns_logarithmic_only_for_a_wide_positive_spread() -> None:
    models = [CostPoint("ddpm", "DDIM-50", 0.01, 4.0), CostPoint("vae", "draw", 1e-4, 6.0)]
    baseline = CostPoint("independent", "default", 1e-6, 140.0, role="baseline")
    floors = [(1000, 3.4)]
    assert not fid_axis_is_log(models, floors)  # 6 / 3.4: linear, from zero
    assert fid_axis_is_log(models + [baseline], floors)  # 140 / 3.4 > 20
    assert not fid_axis_is_log(models + [CostPoint("x", "y", 1.0, 0.0)] + [baseline], floors)  # 0 has no log
    for pts in (models, models + [baseline]):  # both kinds render
        assert quality_cost_png(pts, floors, "t").startswith(b"\x89PNG")


def test_cost_points_carry_the_role(demo_runs: Path) -> None:
    from genbench.report.inputs import load_runs
    from genbench.report.rows import prepared

    frame, _ = load_runs(demo_runs / "runs")
    points = {(p.model, p.sampler): p for p in cost_points(prepared(frame), "classifier")}
    assert points[("independent", "default")].role == "baseline" and points[("gan", "default")].role == "model"
    assert points[("ddpm", "DDIM-50")].seconds > points[("ddpm", "DDIM-20")].seconds


def test_labels_of_points_at_equal_cost_do_not_overlap() -> None:
    """Two markers at the same place get label boxes that do not intersect; a lone label keeps the default."""
    from genbench.report.plots import LABEL_OFFSETS, label_box, place_labels

    sizes = [(60.0, 9.0)] * 3
    offsets = place_labels([(100.0, 100.0), (100.0, 101.0), (400.0, 300.0)], sizes)
    assert offsets[0] == LABEL_OFFSETS[0] and offsets[2] == LABEL_OFFSETS[0]
    assert label_box((100.0, 100.0), (-6, 3), (60.0, 9.0)) == (34.0, 103.0, 94.0, 112.0)  # right-aligned
    a, b = label_box((100.0, 100.0), offsets[0], sizes[0]), label_box((100.0, 101.0), offsets[1], sizes[1])
    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    # nine labels on one spot: more than the candidates; each still gets one, the least-overlapping
    assert len(place_labels([(0.0, 0.0)] * 9, [(40.0, 9.0)] * 9)) == 9


def test_curve_panels_put_every_validation_column_in_the_validation_panel():
    import numpy as np
    import pandas as pd

    from genbench.report.plots import curve_columns, curves_png

    frame = pd.DataFrame({
        "step": [10, 20, 250, 500, 750], "seconds": [1.0, 2, 25, 50, 75],
        "loss": [1.0, 0.9, np.nan, 0.5, 0.4], "grad_norm": [3.0, 2, np.nan, 1, 1],
        "val_autoencoder_bits_per_dim": [np.nan, np.nan, 2.0, np.nan, np.nan],
        "val_autoencoder_bits_per_dim_stderr": [np.nan, np.nan, 0.02, np.nan, np.nan],
        "val_bits_per_dim": [np.nan, np.nan, np.nan, 1.9, 1.95], "val_bits_per_dim_stderr": [np.nan] * 3 + [0.02, 0.02],
    })
    losses, others, val_keys = curve_columns({0: frame})
    assert losses == ["loss"] and others == ["grad_norm"]
    assert val_keys == ["val_bits_per_dim", "val_autoencoder_bits_per_dim"]
    assert curves_png({0: frame}).startswith(b"\x89PNG")
