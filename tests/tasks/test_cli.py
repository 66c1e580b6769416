"""`genbench run --task`: bad task options fail in one line before any work; a task on a finished cell reuses
its checkpoint (the cell is cached, not retrained) and writes task rows with the task and mask fields."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import genbench_independent
import genbench_pixelcnn
from genbench import plugins
from genbench.cli import main
from genbench.plugins import build_registry


@pytest.fixture(scope="module")
def task_registry():
    return build_registry(extra=[genbench_independent, genbench_pixelcnn], autoload=False)


@pytest.mark.parametrize("args, says", [
    (["--task", "inpaint", "--mask", "centre"], "did you mean 'center'"),
    (["--task", "inpant"], "did you mean 'inpaint'"),
    (["--task", "colourise"], "needs RGB data"),
    (["--mask", "center"], "go with --task"),
    (["--task", "denoise", "--mask", "center"], "takes no --mask"),
    (["--task-set", "particles=2"], "go with --task"),
    (["--task", "inpaint", "--task-set", "resamplings=3"], "no model of the grid takes 'resamplings'"),
    (["--task", "inpaint", "--task-set", "particles=0"], "particles must be a whole number >= 1"),
    (["--task", "inpaint", "--task-set", "particles"], "write KEY=VALUE"),
])
def test_bad_task_options_fail_in_one_line_before_work(task_registry, tmp_path, args, says):
    with plugins.using_registry(task_registry):
        res = CliRunner().invoke(main, ["run", "--models", "independent,pixelcnn", "--preset", "tiny", "--out", str(tmp_path),
                                        "--no-progress", "--no-report", *args])
    assert res.exit_code != 0 and says in res.output, res.output
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_a_task_reuses_the_finished_cell(task_registry, tmp_path):
    args = ["run", "--models", "pixelcnn,independent", "--preset", "tiny", "--out", str(tmp_path), "--extractors",
            "random-cnn", "--no-progress", "--no-report", "--task", "inpaint", "--mask", "bottom-half",
            "--task-images", "6"]
    with plugins.using_registry(task_registry):
        first = CliRunner().invoke(main, args[:-6])  # train the cells, no task
        assert first.exit_code == 0, first.output
        (ckpt,) = tmp_path.glob("runs/pixelcnn-*/checkpoints/last.pt")
        before = ckpt.stat().st_mtime_ns, ckpt.read_bytes()
        second = CliRunner().invoke(main, [*args, "--json", str(tmp_path / "run.json")])
        third = CliRunner().invoke(main, [*args[:-3], "center", "--task-set", "particles=2", "--task-images", "4"])
    assert second.exit_code == 0, second.output
    assert "[cached] pixelcnn" in second.output and "[task inpaint] pixelcnn" in second.output
    # the task's phases are announced on the cell's progress (--no-progress keeps phase lines)
    assert "[pixelcnn digits s0] task inpaint bottom-half: restoring (6 images)" in second.output, second.output
    assert "[task inpaint] independent on digits seed 0: not supported" in second.output
    assert (ckpt.stat().st_mtime_ns, ckpt.read_bytes()) == before
    (rows_path,) = tmp_path.glob("runs/pixelcnn-*/tasks/inpaint-bottom-half/rows.json")
    rows = json.loads(rows_path.read_text())
    by = {r["metric"]: r for r in rows}
    assert all(r["task"] == "inpaint" and r["mask"] == "bottom-half" for r in rows)
    assert by["supported"]["value"] == 1.0 and by["mse_known"]["value"] == 0.0 and by["nfe"]["value"] == 32
    assert (rows_path.parent / "grid.png").read_bytes()[:4] == b"\x89PNG"

    # --json: the task rows beside the cells' rows, with the documented keys, as stored
    from genbench.jsonout import RUN_KEYS, TASK_ROW_KEYS, dumps

    doc = json.loads((tmp_path / "run.json").read_text())
    assert set(doc) == set(RUN_KEYS) and "task_rows" in RUN_KEYS
    assert doc["task_rows"] and all(set(r) == set(TASK_ROW_KEYS) for r in doc["task_rows"])
    assert [r for r in doc["task_rows"] if r["model"] == "pixelcnn"] == json.loads(dumps(rows))  # inf -> null
    assert {r["model"] for r in doc["task_rows"]} == {"pixelcnn", "independent"}  # "not supported" rows too
    assert all("task" not in r for r in doc["rows"])
    # --task-set: the option reaches the method; its setting names the rows and the folder
    assert third.exit_code == 0, third.output
    (center,) = tmp_path.glob("runs/pixelcnn-*/tasks/inpaint-center__particles_2/rows.json")
    by = {r["metric"]: r for r in json.loads(center.read_text())}
    assert by["supported"]["mask"] == "center, particles=2"
    assert json.loads(by["supported"]["details"])["method"].startswith("importance resampling, K=2")
    assert by["nfe"]["value"] == 2 * (16 + 1) and by["mse_known"]["value"] == 0.0
    (plain,) = tmp_path.glob("runs/independent-*/tasks/inpaint-center/rows.json")  # independent takes no particles
