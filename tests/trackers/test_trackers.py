"""Experiment trackers (`genbench run --log`): one tiny cell logged to TensorBoard, MLflow and two plugin trackers,
then read back with TensorBoard's own reader (EventAccumulator) and MLflow's (mlflow.search_runs on a local file
store)."""
from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import genbench_independent
from genbench import hookimpl, plugins
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.trackers import Tracker, row_key

TINY = {"max_steps": "20", "n_samples": "40", "sample_batch_size": "40", "eval_every": "10"}


class Recorder(Tracker):
    """A third-party tracker: records every call, in order."""

    name = "recorder"
    calls: list[tuple] = []

    def start_cell(self, run_id, config):
        self.calls.append(("start_cell", run_id, config))

    def log_scalars(self, step, values):
        self.calls.append(("log_scalars", step, dict(values)))

    def log_images(self, step, images):
        self.calls.append(("log_images", step, {k: v.shape for k, v in images.items()}))

    def log_rows(self, step, rows):
        self.calls.append(("log_rows", step, rows))

    def end_cell(self, state):
        self.calls.append(("end_cell", state))


class Exploding(Recorder):
    name = "exploding"
    calls: list[tuple] = []

    def log_scalars(self, step, values):
        raise RuntimeError("tracker server unreachable")


third_party = types.ModuleType("genbench_test_trackers")
third_party.genbench_loggers = hookimpl(lambda: [Recorder, Exploding])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One tiny cell with every tracker on; MLflow writes a local file store."""
    tmp = tmp_path_factory.mktemp("trackers")
    registry = build_registry(extra=[genbench_independent, third_party], autoload=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", (tmp / "mlruns").as_uri())
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        runner = Runner(tmp / "out", registry=registry, device="cpu", progress=False, cache_dir=tmp / "cache",
                        extractors=["random-cnn"], trackers=["tensorboard", "mlflow", "recorder", "exploding"])
        result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
        assert result.state == "done", result.error
        yield types.SimpleNamespace(result=result, run_dir=result.run_dir, out=tmp / "out", uri=(tmp / "mlruns").as_uri(),
                                    curves=pd.read_csv(result.run_dir / "curves.csv"))


def test_tensorboard_event_files_hold_curves_grids_rows_and_config(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logged.out / "tensorboard" / logged.run_dir.name),
                           size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    loss = logged.curves.dropna(subset=["loss"])
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == [1, 10, 20] == loss["step"].tolist()
    np.testing.assert_allclose([e.value for e in events], loss["loss"], rtol=1e-6)  # float32 in the event file
    val = acc.Scalars("train/val_bits_per_dim")
    assert [e.step for e in val] == logged.curves.dropna(subset=["val_bits_per_dim"])["step"].tolist()
    images = acc.Images("samples/default")
    assert len(images) == 1 and images[0].step == 20 and images[0].width > 0
    assert acc.Images("samples/real_test")
    for row in logged.result.rows:
        if row["metric"] in ("fid", "bits_per_dim"):
            (event,) = acc.Scalars(f"rows/{row_key(row)}")
            assert event.step == 20 and event.value == pytest.approx(row["value"], rel=1e-6)
    config = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert logged.result.rows[0]["config_hash"] in config and '"max_steps": 20' in config


def test_mlflow_store_holds_one_finished_run_with_curves_params_rows_and_artifacts(logged):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(logged.uri)
    runs = mlflow.search_runs(experiment_names=["genbench"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["tags.mlflow.runName"] == logged.run_dir.name and run["status"] == "FINISHED"
    assert run["params.model"] == "independent" and run["params.config.max_steps"] == "20"
    fid = next(r for r in logged.result.rows if r["metric"] == "fid")
    assert run[f"metrics.rows/{row_key(fid)}"] == pytest.approx(fid["value"], rel=1e-12)
    client = MlflowClient(tracking_uri=logged.uri)
    history = client.get_metric_history(run["run_id"], "train/loss")
    loss = logged.curves.dropna(subset=["loss"])
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == list(zip(loss["step"], loss["loss"]))
    artifacts = {a.path for a in client.list_artifacts(run["run_id"])} | {
        a.path for a in client.list_artifacts(run["run_id"], "samples")}
    assert {"config.json", "rows.json", "samples/default.png", "samples/real_test.png"} <= artifacts
    rows = json.loads(open(client.download_artifacts(run["run_id"], "rows.json")).read())
    assert [r["metric"] for r in rows] == [r["metric"] for r in logged.result.rows]


def test_row_keys_are_never_a_prefix_of_each_other(logged):
    keys = [row_key(r) for r in logged.result.rows]
    assert row_key({"metric": "fid", "sampler": "DDIM-50", "extractor": "random-cnn"}) == "fid/DDIM-50 random-cnn"
    assert row_key({"metric": "train_seconds", "kind": "", "sampler": ""}) == "train_seconds/all"
    assert not [(a, b) for a in keys for b in keys if b.startswith(a + "/")]


def test_a_plugin_tracker_gets_every_call_in_order_and_a_failing_one_is_switched_off(logged, caplog):
    calls = Recorder.calls
    assert calls[0][0] == "start_cell" and calls[0][1] == logged.run_dir.name
    assert calls[0][2] == json.loads((logged.run_dir / "config.json").read_text())
    assert [c[0] for c in calls[-3:]] == ["log_images", "log_rows", "end_cell"] and calls[-1] == ("end_cell", "done")
    scalars = [c for c in calls if c[0] == "log_scalars"]
    assert [c[1] for c in scalars] == logged.curves["step"].tolist()
    assert set(calls[-3][2]) == {"default", "real_test"} and calls[-2][2] == logged.result.rows
    assert [c[0] for c in Exploding.calls] == ["start_cell"]  # switched off at its first failure; the cell went on


def test_cli_log_names_a_missing_tracker_package_in_one_line(registry, tmp_path, monkeypatch):
    from genbench.cli import main
    from genbench.trackers.tensorboard import TensorBoardTracker

    def missing(cls):
        raise __import__("genbench.trackers").trackers.TrackerError(
            "--log tensorboard needs TensorBoard: pip install 'genbench[trackers]' (or pip install tensorboard)")

    monkeypatch.setattr(TensorBoardTracker, "check", classmethod(missing))
    with plugins.using_registry(registry):
        res = CliRunner().invoke(main, ["run", "--models", "independent", "--log", "tensorboard", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "pip install 'genbench[trackers]'" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()
