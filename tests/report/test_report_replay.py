"""End to end: a model that replays its training batches, scored by the real metrics, is flagged in the report;
the real validation split, scored the same way (its floor rows, read as a model's), is not.

One tiny cell with the untrained random-CNN extractor and no class metrics (no classifier is trained): ~6 s.
"""
from __future__ import annotations

import json
import types

import pandas as pd
import pytest

from genbench import hookimpl, plugins
from genbench.metrics.base import EXTRACTORS_ENV
from genbench.metrics.display import registry_displays
from genbench.report.board import build_boards
from genbench.report.memorisation import FLAG
from genbench.results import rows_frame
from genbench.runner import CellSpec, Runner
from genbench.testing import ReplayModel


class ReplayForReport(ReplayModel):
    """Keeps every training batch and samples by replaying them: each sample is a training image."""

    name = "replay-for-report"


@pytest.fixture(scope="module")
def replay_rows(tmp_path_factory) -> pd.DataFrame:
    module = types.ModuleType("genbench_report_replay")
    module.genbench_models = hookimpl(lambda: [ReplayForReport])  # type: ignore[attr-defined]
    reg = plugins.build_registry(extra=[module], autoload=False)
    reg.metrics.entries = {k: v for k, v in reg.metrics.entries.items() if k != "classes"}  # no classifier
    out = tmp_path_factory.mktemp("report-replay")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(EXTRACTORS_ENV, "random-cnn")
        res = Runner(out, registry=reg, device="cpu", progress=False, cache_dir=out / "cache").run_cell(
            CellSpec(ReplayForReport.name, "digits", 0, "tiny", {}))
    assert res.state == "done", res.error
    return rows_frame(res.rows), registry_displays(reg)


def test_replaying_model_is_flagged_and_validation_data_is_not(replay_rows) -> None:
    frame, displays = replay_rows
    # the real validation images as a model: the floor rows (real images in place of samples) under a model's name
    real = frame[frame["metric"].str.endswith("_floor")].copy()
    real["metric"] = real["metric"].str.removesuffix("_floor")
    real[["model", "run_id", "sampler", "role"]] = ["validation", "validation-run", "real", "model"]
    floors = frame[frame["metric"].str.endswith("_floor")].assign(run_id="validation-run", model="validation")
    both = pd.concat([frame, real, floors], ignore_index=True)
    board = build_boards(both, displays, include_tiny=True)["digits"]
    assert [f["model"] for f in board.memorisation] == [ReplayForReport.name]
    flag = board.memorisation[0]
    assert flag["share"] == 1.0 and flag["sigmas_above"] > 3
    quality = next(t for t in board.tables if t.name == "quality")
    assert {r.model: r.flag for r in quality.rows if r.role != "floor"} == {ReplayForReport.name: FLAG, "validation": ""}
    closer = real[(real["metric"] == "closer_than_p5") & (real["extractor"] == "")]
    assert json.loads(closer["details"].iloc[0])["expected_share"] == 0.05 and closer["value"].iloc[0] < 0.2
