"""End to end: real cells from the runner (the reference model, a diverging model) -> the report.

Only the metrics that need no feature extractor run (bits/dim, speed, training), so
no classifier is trained and the test takes seconds; FID rows are covered by the
hand-written runs of the other tests.
"""
from __future__ import annotations

import json
import types

import pandas as pd
import pytest
import torch

import genbench_independent
from genbench import hookimpl, plugins
from genbench.report import write_report
from genbench.runner import CellSpec, Runner

CHEAP_METRICS = ("bits_per_dim", "speed", "training")


class Diverging(genbench_independent.IndependentCategorical):
    """The reference model, except that its loss is NaN from step 3: a cell that fails for real."""

    name = "diverging-for-report"

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        out = super().train_step(x)
        return {"loss": float("nan")} if self.step >= 2 else out


_module = types.ModuleType("genbench_report_test_models")
_module.genbench_models = hookimpl(lambda: [Diverging])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def runner_registry():
    reg = plugins.build_registry(extra=[genbench_independent, _module], autoload=False)
    reg.metrics.entries = {k: v for k, v in reg.metrics.entries.items() if k in CHEAP_METRICS}
    return reg


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, runner_registry):
    out = tmp_path_factory.mktemp("report-real")
    runner = Runner(out, registry=runner_registry, device="cpu", progress=False)
    results = [runner.run_cell(CellSpec("independent", "digits", seed, "tiny")) for seed in (0, 1)]
    results.append(runner.run_cell(CellSpec(Diverging.name, "digits", 0, "tiny")))
    assert [r.state for r in results] == ["done", "done", "failed"], [r.error for r in results]
    return out


def test_report_from_real_runs(real_runs, runner_registry) -> None:
    hidden = write_report(real_runs, real_runs / "hidden", registry=runner_registry)  # tiny runs: smoke tests
    assert json.loads((hidden.parent / "results.json").read_text())["leaderboard"] == []
    assert "2 run(s) of the tiny preset (smoke tests) are left out of the leaderboards" in hidden.read_text()
    index = write_report(real_runs, real_runs / "report", registry=runner_registry, include_tiny=True)
    html = index.read_text()
    data = json.loads((index.parent / "results.json").read_text())
    board = pd.DataFrame(data["leaderboard"])
    rows = pd.read_csv(index.parent / "results.csv")
    bpd = board[(board["metric"] == "bits_per_dim") & (board["model"] == "independent")]
    assert len(bpd) == 1 and bpd["seeds"].iloc[0] == 2 and bpd["role"].iloc[0] == "baseline"
    assert bpd["mean"].iloc[0] == pytest.approx(rows[rows["metric"] == "bits_per_dim"]["value"].mean())
    ips = board[board["metric"] == "images_per_second"]
    assert list(ips["sampler"]) == ["default"] and ips["ci95"].notna().all()
    assert [f["model"] for f in data["failed"]] == [Diverging.name]
    assert "DivergenceError" in data["failed"][0]["error"] and "DivergenceError" in html
    # commands name only what differs from the tiny preset (nothing here), with both seeds; the failed cell has one too
    assert sorted(data["commands"]) == [
        f"genbench run --models {Diverging.name} --dataset digits --seeds 0 --preset tiny --device cpu",
        "genbench run --models independent --dataset digits --seeds 0,1 --preset tiny --device cpu",
    ]
    assert "real test images · digits" in html and "training curves, 2 run(s)" in html
    assert html.count('src="data:image/png;base64,') == 3  # samples, real test images, curves (no FID: no cost plot)


def test_every_row_the_runner_writes_has_a_declared_display(real_runs, runner_registry) -> None:
    """The report knows every metric name of real rows from the metrics' declarations, with the rows' direction."""
    from genbench.metrics.display import registry_displays
    from genbench.report.inputs import load_runs

    frame, _ = load_runs(real_runs / "runs")
    displays = registry_displays(runner_registry)
    for metric, g in frame.groupby("metric"):
        assert metric in displays, metric
        assert {displays[metric].higher} == set(g["higher_is_better"]), metric
