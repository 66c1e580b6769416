"""End to end through the runner with the reference model: rows, skipping, resuming, failures."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from genbench.io import load_checkpoint
from genbench.runner import CellSpec, Runner

TINY = {"max_steps": 20, "n_samples": 200, "sample_batch_size": 100, "eval_every": 10}


@pytest.fixture
def runner(tmp_path, registry, cache_dir):
    return Runner(tmp_path / "reports", registry=registry, device="cpu", progress=False, cache_dir=cache_dir)


def frame(result) -> pd.DataFrame:
    return pd.DataFrame(result.rows)


def test_reference_model_on_digits_writes_every_row(runner):
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
    assert result.state == "done", result.error
    df = frame(result)
    metrics = set(df["metric"])
    assert {"fid", "fid_floor", "bits_per_dim", "val_bits_per_dim", "images_per_second", "nfe", "flops_per_image",
            "train_seconds"} <= metrics
    bpd = df[df.metric == "bits_per_dim"].iloc[0]
    assert bpd.kind == "exact" and bpd.unit == "bits/dim" and bpd.n == 300 and bpd.stderr > 0
    # the per-pixel categorical on digits: well above 0, well below uniform (log2 17 = 4.09)
    assert 2.0 < bpd.value < 3.0
    val = df[df.metric == "val_bits_per_dim"].iloc[0]  # the selected step's score, with its standard error
    curve = pd.read_csv(result.run_dir / "curves.csv").dropna(subset=["val_bits_per_dim"]).iloc[-1]
    assert val.n == 300 and val.stderr > 0 and val.stderr == pytest.approx(curve["val_bits_per_dim_stderr"], rel=1e-12)
    fid = df[df.metric == "fid"].iloc[0]
    floor = df[df.metric == "fid_floor"].iloc[0]
    assert fid.value > floor.value >= 0 and floor.n == 200 and fid.extractor == "classifier"
    assert len(fid.extractor_sha256) == 64
    assert df.loc[df.metric == "nfe", "value"].iloc[0] == 1
    for col in ("run_id", "config_hash", "device", "versions", "timestamp", "split", "seed", "role", "sampling_seed"):
        assert df[col].notna().all(), col
    assert set(df["role"]) == {"baseline"} and set(df["sampling_seed"]) == {0}  # the per-pixel model is a baseline
    run_dir = result.run_dir
    samples = np.load(run_dir / "samples" / "default.npz")
    assert samples["samples"].dtype == np.uint8 and samples["samples"].shape == (200, 1, 8, 8)
    assert samples["samples"].max() <= 16
    assert (run_dir / "samples" / "default.png").stat().st_size > 0
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["model"]["step"] == 20
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"


def test_bits_per_dim_equals_hand_computed_exact_nll(runner):
    """The metric's number is the model's exact nll over the test split, converted to bits/dim by hand."""
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", {**TINY, "max_steps": 19}))
    data = runner.load_data("digits")
    cls = runner.registry.models.get("independent")
    state = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")["model"]
    model = cls(cls.Config(**{**cls.Config().to_dict(), **TINY}), data.spec)
    model.load_state_dict(state)
    k = data.test.reshape(len(data.test), -1).long()
    counts = model.counts + model.config.alpha
    logp = (counts / counts.sum(-1, keepdim=True)).log()
    by_hand = -logp.gather(1, k.T).sum(0).mean() / (64 * math.log(2))
    got = frame(result).query("metric == 'bits_per_dim'").value.iloc[0]
    assert got == pytest.approx(float(by_hand), rel=1e-6)


def test_capped_likelihood_images_are_the_first_of_each_split_and_rows_say_so(runner):
    """nll_test_images / nll_val_images: bits/dim over the first N test images (n = N, details say of how many),
    validation over the first M; the value is the exact nll of those images by hand."""
    capped = {**TINY, "max_steps": 19, "nll_test_images": 120, "nll_val_images": 40}
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", capped))
    data = runner.load_data("digits")
    cls = runner.registry.models.get("independent")
    model = cls(cls.Config(**{**cls.Config().to_dict(), **capped}), data.spec)
    model.load_state_dict(load_checkpoint(result.run_dir / "checkpoints" / "best.pt")["model"])
    counts = model.counts + model.config.alpha
    logp = (counts / counts.sum(-1, keepdim=True)).log()

    def by_hand(images):
        k = images.reshape(len(images), -1).long()
        return float(-logp.gather(1, k.T).sum(0).mean() / (64 * math.log(2)))

    df = frame(result)
    bpd = df.query("metric == 'bits_per_dim'").iloc[0]
    assert bpd.n == 120 and json.loads(bpd.details)["test_images"] == f"first 120 of {len(data.test)}"
    assert bpd.value == pytest.approx(by_hand(data.test[:120]), rel=1e-6)
    val = df.query("metric == 'val_bits_per_dim'").iloc[0]
    assert val.n == 40 and val.value == pytest.approx(by_hand(data.val[:40]), rel=1e-6)


def test_rerun_skips_finished_cell_and_new_config_reruns(runner):
    first = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
    again = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
    assert again.state == "skipped" and again.rows == first.rows
    other = runner.run_cell(CellSpec("independent", "digits", 1, "quick", TINY))
    assert other.state == "done" and other.run_dir != first.run_dir


def test_interrupted_run_resumes_from_last_checkpoint(runner):
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    plan = runner.plan(spec)
    # pretend an earlier process trained 12 steps and died
    from genbench.runner import Trainer

    run_dir = runner.out_dir / "runs" / plan.run_id
    model = plan.model_cls(plan.config, plan.data.spec)
    partial = Trainer(model, plan.data, plan.config, 0, run_dir, torch.device("cpu"), False)
    plan.config.max_steps = 12
    partial.train()
    plan.config.max_steps = TINY["max_steps"]
    result = runner.run_cell(plan)
    assert result.state == "done"
    log = (run_dir / "log.txt").read_text()
    assert "resumed" in log and "at step 12" in log
    steps = frame(result).query("metric == 'train_steps'").value.iloc[0]
    assert steps == TINY["max_steps"]


def test_diverging_model_is_recorded_as_failed_and_others_finish(runner):
    from genbench.executors import run_local

    results = run_local(runner, [
        CellSpec("diverging", "digits", 0, "tiny", {}),
        CellSpec("raising", "digits", 0, "tiny", {}),
        CellSpec("independent", "digits", 0, "quick", TINY),
    ])
    states = [r.state for r in results]
    assert states == ["failed", "failed", "done"]
    assert "diverged at step 3" in results[0].error and "\n" not in results[0].error
    assert "sampler exploded on purpose" in results[1].error
    status = json.loads((results[0].run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "diverged" in status["error"]
    assert not (results[0].run_dir / "rows.csv").exists()


def test_user_npz_runs_and_bad_values_fail_clearly(runner, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(120, 6, 6), dtype=np.uint8)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x)
    result = runner.run_cell(CellSpec("independent", str(path), 0, "quick", {**TINY, "n_samples": 20}))
    assert result.state == "done", result.error
    df = frame(result)
    assert {"fid", "fid_floor", "bits_per_dim", "images_per_second"} <= set(df.metric)
    assert df.query("metric == 'fid'").extractor.iloc[0] == "random-cnn"  # no labels given
    # uniform data over 4 levels: the true entropy is 2 bits/dim and an exact model cannot beat it
    assert df.query("metric == 'bits_per_dim'").value.iloc[0] >= 2.0 - 1e-9
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, levels=3)
    failed = runner.run_cell(CellSpec("independent", str(bad), 0, "quick", TINY))
    assert failed.state == "failed" and "levels=3" in failed.error


def test_run_ids_are_safe_folder_names():
    from genbench.naming import safe_name
    from genbench.runner import safe_name as reexported

    assert reexported is safe_name
    assert safe_name("<script>alert(1)</script>") == "_script_alert_1___script_"
    assert safe_name("../../etc") == "_.._etc"
    assert "/" not in safe_name("a/b") and safe_name("ddpm-1.0_x") == "ddpm-1.0_x"


def test_real_test_grid_saved_beside_samples(runner):
    result = runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY))
    from PIL import Image

    with Image.open(result.run_dir / "real_test.png") as img:
        assert img.size == (10 * 9 + 1, 10 * 9 + 1)
        assert max(img.convert("L").getdata()) == 255  # levels are scaled by K-1, not by 255


def test_plan_resolves_once_and_grid_is_recorded_without_changing_the_run_id(runner):
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    plan = runner.plan(spec)
    assert plan.model_cls is runner.registry.models.get("independent") and plan.config.max_steps == TINY["max_steps"]
    assert plan.run_id.startswith("independent-digits-s0-") and plan.identity["config"] == plan.config.to_dict()
    gridded = CellSpec("independent", "digits", 0, "quick", TINY, grid={"models": ["independent"], "seeds": [0]})
    assert runner.plan(gridded).run_id == plan.run_id
    result = runner.run_cell(gridded)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["grid"] == {"models": ["independent"], "seeds": [0]} and config["config_hash"] == plan.config_hash


def test_runner_and_cells_leave_global_state_as_they_found_it(tmp_path, registry, cache_dir):
    import logging
    import random

    logger = logging.getLogger("genbench")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.manual_seed(123)
        np.random.seed(4)
        random.seed(5)
        before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
        runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir)
        assert runner.run_cell(CellSpec("independent", "digits", 0, "quick", TINY)).state == "done"
        assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == flags
        assert logger.level == logging.WARNING  # the CLI sets the level, not the runner
        assert torch.equal(torch.get_rng_state(), before[0])
        assert (np.random.get_state()[1] == before[1]).all() and random.getstate() == before[2]
    finally:
        logger.setLevel(level)
