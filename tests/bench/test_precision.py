"""bench/precision.py: the bf16-vs-fp32 verdict per family, and the built-in presets that rely on it."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from scipy import stats

from bench_scripts import BENCH, load_script
from genbench.config import resolve_config
from genbench.model import DataSpec
from genbench.plugins import get_registry

precision = load_script("precision")
DIGITS = DataSpec(1, 8, 8, 17)


def row(model: str, metric: str, seed: int, value: float, stderr: float | None = None, **extra) -> dict:
    return {"model": model, "metric": metric, "seed": seed, "value": value, "stderr": stderr, "role": "model",
            "sampler": extra.get("sampler", ""), "kind": extra.get("kind", "")}


def grid_rows(model: str, fids: list[float], bpds: list[float] | None = None, se: float = 0.017,
              train: float = 100.0) -> list[dict]:
    rows = []
    for seed, fid in enumerate(fids):
        rows.append(row(model, "fid", seed, fid, 3.0, sampler="DDIM-50"))
        rows.append(row(model, "train_seconds", seed, train))
        if bpds is not None:
            rows.append(row(model, "bits_per_dim", seed, bpds[seed], se, kind="VLB"))
    rows.append({**row(model, "fid_floor", 0, 3.4), "role": "model"})  # not the model's FID: ignored
    return rows


def test_mean_ci95_is_the_student_t_half_width():
    values = [6.85, 6.97, 7.20]
    mean, half = precision.mean_ci95(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx((lo + hi) / 2, abs=1e-12)
    assert half == pytest.approx((hi - lo) / 2, rel=1e-12)
    assert math.isnan(precision.mean_ci95([7.0])[1])


def test_verdict_holds_when_bf16_is_inside_the_fp32_spread_and_the_bound_within_two_se():
    fp32 = grid_rows("ddpm", [6.85, 6.97, 7.20], [2.095, 2.090, 2.085], train=181.0)
    bf16 = grid_rows("ddpm", [5.99, 6.67, 7.55], [2.093, 2.093, 2.087], train=156.0)
    res = precision.compare_grids(fp32, bf16)["ddpm"]
    assert res["verdict"] == "holds"
    fid = next(c for c in res["checks"] if c["measure"] == "fid:DDIM-50")
    upper = statistics.mean([6.85, 6.97, 7.20]) + precision.mean_ci95([6.85, 6.97, 7.20])[1]
    assert fid["bf16_mean"] <= upper and fid["holds"]
    bpd = next(c for c in res["checks"] if c["measure"] == "bpd:VLB")
    assert bpd["difference"] == pytest.approx(statistics.mean([2.093, 2.093, 2.087]) - 2.09, abs=1e-12)
    assert bpd["difference_in_se"] == pytest.approx(bpd["difference"] / 0.017)
    assert res["speeds"]["train_seconds"]["ratio_bf16_over_fp32"] == pytest.approx(156 / 181)


def test_verdict_fails_on_a_worse_fid_or_a_moved_bound():
    fp32 = grid_rows("gan", [7.7, 8.3, 9.7])
    worse = grid_rows("gan", [12.0, 12.5, 13.0])  # above mean + half-width (8.57 + 2.5)
    assert precision.compare_grids(fp32, worse)["gan"]["verdict"] == "does not hold"
    better = grid_rows("gan", [4.0, 4.5, 5.0])  # below the interval: not a loss of quality
    assert precision.compare_grids(fp32, better)["gan"]["verdict"] == "holds"
    moved = precision.compare_grids(grid_rows("vae", [17, 18, 19], [1.88, 1.88, 1.88]),
                                    grid_rows("vae", [17, 18, 19], [1.88 + 0.035] * 3))["vae"]  # 2.06 SE
    assert moved["verdict"] == "does not hold"
    assert [c["holds"] for c in moved["checks"]] == [False, True]  # bits/dim first (sorted keys), FID holds


def test_a_baseline_is_compared_like_a_model_and_floors_are_not():
    fp32 = [{**r, "role": "baseline"} for r in grid_rows("independent", [137.4, 143.3, 130.8], [2.433] * 3)]
    res = precision.compare_grids(fp32, fp32)["independent"]
    assert res["verdict"] == "holds"
    assert [c["measure"] for c in res["checks"]] == ["bpd:VLB", "fid:DDIM-50"]  # no fid_floor among them


def test_numbers_keep_their_significant_zeros_without_a_bare_point():
    assert [precision.sig(v, 2) for v in (0.44, 14.0, 5.0, 0.0697)] == ["0.44", "14", "5.0", "0.070"]
    assert precision.fmt_interval(7.003, 0.44) == "7.00 ± 0.44" and precision.fmt_interval(137.1, 16.0) == "137 ± 16"


def test_only_the_first_sampling_draw_of_each_training_seed_counts():
    fp32 = grid_rows("gan", [7.7, 8.3, 9.7])
    extra = [{**row("gan", "fid", s, 50.0, 3.0, sampler="DDIM-50"), "sampling_seed": 1} for s in range(3)]
    res = precision.compare_grids(fp32 + extra, grid_rows("gan", [7.7, 8.3, 9.7]))["gan"]
    assert res["checks"][0]["fp32"] == [7.7, 8.3, 9.7] and res["verdict"] == "holds"


def test_only_seeds_both_grids_ran_are_compared():
    fp32 = grid_rows("vdm", [7.0, 7.2, 7.4], [1.9, 1.9, 1.9])
    bf16 = grid_rows("vdm", [7.1], [1.9])  # one seed so far
    res = precision.compare_grids(fp32, bf16)["vdm"]
    assert all(c["seeds"] == [0] for c in res["checks"])


def test_script_writes_stamped_results(tmp_path: Path):
    for grid, fids in zip(precision.GRIDS, ([6.85, 6.97, 7.20], [5.99, 6.67, 7.55])):
        (tmp_path / f"{grid}.json").write_text(json.dumps({
            "stamp": {"commit": "abc"}, "commands": [f"genbench run --config bench/grids/{grid}.toml"],
            "grid": {"models": ["ddpm", "pixelcnn"]}, "rows": grid_rows("ddpm", fids, [2.09] * 3)}))
    res = precision.main(["--results", str(tmp_path), "--out", str(tmp_path)])
    assert res["verdicts"] == {"ddpm": "holds"} and res["missing"] == ["pixelcnn"]
    text = (tmp_path / "precision_digits.md").read_text()
    assert "**holds**" in text and "pixelcnn" in text and "Made by" in text


def test_builtin_quick_presets_run_bf16_only_where_the_committed_grids_say_it_holds():
    """A family whose quick preset asks for "auto" (bf16 where native) must have the verdict "holds" in
    bench/results/precision_digits.json; the others keep fp32."""
    verdicts = json.loads((BENCH / "results" / "precision_digits.json").read_text())["verdicts"]
    reg = get_registry()
    auto = []
    for name in reg.models.names():
        cls = reg.models.get(name)
        if "quick" not in getattr(cls, "presets", {}):
            continue
        config = resolve_config(cls, "quick", DIGITS, {})
        if config.precision != "fp32":
            assert config.precision == "auto", name
            assert verdicts.get(name) == "holds", f"{name}: quick preset runs bf16 without a 'holds' verdict"
            auto.append(name)
    assert auto, "no family defaults to bf16: the test above checked nothing"
