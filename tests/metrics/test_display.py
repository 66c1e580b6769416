"""Metric displays: every core metric declares how its rows are shown; declarations are collected in order."""
from __future__ import annotations

import pytest

from genbench.metrics.base import Metric
from genbench.metrics.display import (RUNNER_DISPLAY, MetricDisplay, collect_displays, readable_scale, registry_displays,
                                      scale_suffix, with_floor)


def test_with_floor_declares_the_floor_as_a_reference_of_the_metric() -> None:
    d = with_floor("fid", MetricDisplay("FID", "quality", direction="lower", per_extractor=True))
    assert list(d) == ["fid", "fid_floor"]
    assert d["fid"].floor_of is None and d["fid_floor"].floor_of == "fid" and d["fid_floor"].title == "FID"
    assert d["fid"].higher is False and MetricDisplay("x", "cost").higher is None


def test_collect_keeps_declaration_order_then_the_runners_rows() -> None:
    class A(Metric):
        name = "a"
        display = {"z": MetricDisplay("z", "quality"), "y": MetricDisplay("y", "cost")}

        def compute(self, ctx):
            return []

    class B(A):
        name = "b"
        display = {"x": MetricDisplay("x", "quality")}

    assert list(collect_displays([A, B])) == ["z", "y", "x", *RUNNER_DISPLAY]
    with pytest.raises(ValueError, match="'z' are declared by both a and b"):
        collect_displays([A, type("B2", (A,), {"name": "b"})])


def test_every_core_metric_declares_its_rows() -> None:
    from genbench.plugins import build_registry

    displays = registry_displays(build_registry(autoload=False))
    for name in ("fid", "fid_floor", "kid", "kid_floor", "precision", "recall_floor", "density", "coverage",
                 "confident_share", "class_entropy_floor", "min_class_share", "bits_per_dim", "val_bits_per_dim",
                 "data_entropy", "images_per_second", "latency", "nfe", "flops_per_image", "peak_memory",
                 "train_seconds", "train_steps", "parameters"):
        assert name in displays, name
    assert displays["latency"].scale == 1e3 and displays["bits_per_dim"].per_model
    assert displays["val_bits_per_dim"].kindless and displays["fid"].per_extractor
    assert not displays["confident_share"].per_extractor  # the classifier's own view, not per extractor
    # KID's magnitude depends on the feature space: its factor is chosen from its values (and its floor's)
    assert displays["kid"].auto_scale == displays["kid_floor"].auto_scale == "kid" and displays["kid"].title == "KID"
    for name in ("exact_copies", "exact_copies_floor", "closer_than_p5", "closer_than_p5_floor", "fid_train"):
        assert displays[name].table == "memorisation", name


def test_readable_scale_is_the_smallest_power_of_a_thousand_that_shows_the_largest_value_above_0_1() -> None:
    # whitened random-CNN KID (~1e-3, a floor near 0, negative at small n): x10^3
    assert readable_scale([0.0042, 0.0001, -0.0003, float("nan")]) == 1e3
    # the classifier's KID (~12, the value that used to be shown as "12.6k"): as it is
    assert readable_scale([12.6, 0.9, -0.2]) == 1.0
    assert readable_scale([0.1]) == 1.0 and readable_scale([0.09]) == 1e3
    assert readable_scale([3e-5, 1e-6]) == 1e6 and readable_scale([1e-14]) == 1e9
    assert readable_scale([]) == readable_scale([0.0, float("inf")]) == 1.0
    assert [scale_suffix(s) for s in (1.0, 1e3, 1e6, 1e9, 2.5)] == ["", " ×10³", " ×10⁶", " ×10⁹", " ×2.5"]
