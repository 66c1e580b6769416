"""Damaged files are survived: checkpoints every N steps, the newest usable one is resumed from (a damaged one is
moved aside to *.corrupt), unreadable run files make the cell run again, cache files are verified by sha256,
and a failed cell's traceback goes to its log.txt, not to the terminal."""
from __future__ import annotations

import json
import logging

import pytest

import genbench_independent
from genbench.io import load_checkpoint, load_verified, save_verified, sha256_path
from genbench.runner import CellSpec, Runner

TINY = {"max_steps": 20, "n_samples": 40, "sample_batch_size": 40, "eval_every": 5}
TIMING = {"images_per_second", "latency", "train_seconds", "peak_memory_mib"}
Model = genbench_independent.IndependentCategorical


def quality(rows):
    """Every measured number but the timings, in a canonical order (bit-identical on CPU)."""
    keep = [(r["metric"], r["sampler"], r["kind"], r["reference"], r["sampling_seed"], r["value"], r["stderr"])
            for r in rows if r["metric"] not in TIMING and "second" not in r["metric"]]
    return sorted(keep, key=repr)


def make_runner(tmp_path, registry, cache_dir, name="reports", **options):
    return Runner(tmp_path / name, registry=registry, device="cpu", progress=False, cache_dir=cache_dir,
                  extractors=["random-cnn"], **options)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, registry, cache_dir):
    """The uninterrupted cell every resumed one must equal."""
    result = make_runner(tmp_path_factory.mktemp("whole"), registry, cache_dir).run_cell(
        CellSpec("independent", "digits", 0, "quick", TINY))
    assert result.state == "done", result.error
    return result


@pytest.fixture(scope="module")
def whole(whole_run):
    return quality(whole_run.rows)


def interrupt_at(monkeypatch, step):
    """Make the model stop (as a kill would) when it reaches ``step``."""
    original = Model.train_step

    def train_step(self, x):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(Model, "train_step", train_step)
    return lambda: monkeypatch.setattr(Model, "train_step", original)


def run_interrupted(runner, monkeypatch, step):
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    restore = interrupt_at(monkeypatch, step)
    with pytest.raises(KeyboardInterrupt):
        runner.run_cell(spec)
    restore()
    return spec, runner.out_dir / "runs" / runner.plan(spec).run_id / "checkpoints"


def steps_of(ckpt_dir):
    return {p.stem: load_checkpoint(p)["model"]["step"] for p in ckpt_dir.glob("*.pt")}


def test_checkpoints_every_n_steps_keep_the_previous_one(tmp_path, registry, cache_dir, monkeypatch, caplog):
    runner = make_runner(tmp_path, registry, cache_dir, checkpoint_every_steps=4, checkpoint_every_seconds=None)
    with caplog.at_level(logging.INFO, logger="genbench"):
        _, ckpt = run_interrupted(runner, monkeypatch, 14)
    written = [r.getMessage() for r in caplog.records if r.getMessage().startswith("checkpoint last.pt")]
    assert written == ["checkpoint last.pt at step 4", "checkpoint last.pt at step 8", "checkpoint last.pt at step 12"]
    assert steps_of(ckpt) == {"last": 12, "previous": 8, "best": 10}


def test_truncated_last_checkpoint_is_moved_aside_and_the_newest_good_one_resumed(
        tmp_path, registry, cache_dir, monkeypatch, caplog, whole):
    runner = make_runner(tmp_path, registry, cache_dir, checkpoint_every_steps=4, checkpoint_every_seconds=None)
    spec, ckpt = run_interrupted(runner, monkeypatch, 14)
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 2])
    (ckpt / ".last.pt.abc123.tmp").write_bytes(b"half a write")  # left by a writer killed mid-write
    with caplog.at_level(logging.INFO, logger="genbench"):
        result = runner.run_cell(spec)
    assert result.state == "done", result.error
    assert (ckpt / "last.pt.corrupt").read_bytes() == data[: len(data) // 2]
    assert not (ckpt / ".last.pt.abc123.tmp").exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(ckpt / "last.pt") in w and "moved it aside to last.pt.corrupt" in w for w in warnings), warnings
    assert "resumed" in (result.run_dir / "log.txt").read_text() and "at step 10" in (result.run_dir / "log.txt").read_text()
    assert quality(result.rows) == whole  # best.pt (step 10) is newer than previous.pt (step 8)


def test_a_kill_before_the_first_last_checkpoint_resumes_from_best(tmp_path, registry, cache_dir, monkeypatch, whole):
    runner = make_runner(tmp_path, registry, cache_dir, checkpoint_every_steps=None, checkpoint_every_seconds=None)
    spec, ckpt = run_interrupted(runner, monkeypatch, 7)
    assert steps_of(ckpt) == {"best": 5}
    result = runner.run_cell(spec)
    assert result.state == "done", result.error
    log = (result.run_dir / "log.txt").read_text()
    assert "resuming from checkpoints/best.pt" in log and "at step 5" in log
    assert quality(result.rows) == whole


def test_no_usable_checkpoint_means_a_restart_from_step_0(tmp_path, registry, cache_dir, monkeypatch, whole):
    runner = make_runner(tmp_path, registry, cache_dir, checkpoint_every_steps=4)
    spec, ckpt = run_interrupted(runner, monkeypatch, 14)
    for name in ("last", "previous", "best"):
        (ckpt / f"{name}.pt").write_bytes(b"\x00garbage")
    result = runner.run_cell(spec)
    assert result.state == "done", result.error
    assert sorted(p.name for p in ckpt.glob("*.corrupt")) == ["best.pt.corrupt", "last.pt.corrupt", "previous.pt.corrupt"]
    assert "training restarts from step 0" in (result.run_dir / "log.txt").read_text()
    assert quality(result.rows) == whole


@pytest.mark.parametrize("damage", ["rows-garbage", "rows-empty", "rows-not-rows", "status-cut", "status-missing"])
def test_a_finished_cell_with_unreadable_files_is_not_finished(tmp_path, whole_run, damage, caplog):
    import shutil

    from genbench.runner.cells import finished_rows

    run_dir = shutil.copytree(whole_run.run_dir, tmp_path / whole_run.run_dir.name)
    config_hash = json.loads((run_dir / "status.json").read_text())["config_hash"]
    assert finished_rows(run_dir, config_hash) == whole_run.rows
    name = "status.json" if damage.startswith("status") else "rows.json"
    damaged = {"rows-garbage": b"\xff\xfe\x00[{", "rows-empty": b"", "rows-not-rows": b'{"a": 1}',
               "status-cut": (run_dir / name).read_bytes()[:20], "status-missing": None}[damage]
    if damaged is None:
        (run_dir / name).unlink()
    else:
        (run_dir / name).write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="genbench"):
        assert finished_rows(run_dir, config_hash) is None
    if name == "rows.json":
        assert str(run_dir / "rows.json") in caplog.text


def test_unreadable_rows_make_the_cell_run_again(tmp_path, registry, cache_dir, whole_run, whole):
    import shutil

    runner = make_runner(tmp_path, registry, cache_dir)
    shutil.copytree(whole_run.run_dir, runner.out_dir / "runs" / whole_run.run_dir.name)
    (runner.out_dir / "runs" / whole_run.run_dir.name / "rows.json").write_bytes(b"\xff\xfe\x00[{")
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    again = runner.run_cell(spec)
    assert again.state == "done" and quality(again.rows) == whole  # recomputed (from last.pt), not skipped
    assert runner.run_cell(spec).state == "skipped"


def test_cache_files_are_verified_by_sha256_and_damaged_ones_moved_aside(tmp_path, caplog):
    import torch

    path = tmp_path / "features" / "x.pt"
    save_verified(path, {"stats": torch.arange(4.0)})
    assert sha256_path(path).read_text().strip() and torch.equal(load_verified(path)["stats"], torch.arange(4.0))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit torch itself might not notice
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="genbench"):
        assert load_verified(path) is None
    assert (tmp_path / "features" / "x.pt.corrupt").exists() and (tmp_path / "features" / "x.pt.sha256.corrupt").exists()
    assert "sha256 differs" in caplog.text and str(path) in caplog.text
    save_verified(path, {"stats": torch.ones(2)})
    path.write_bytes(path.read_bytes()[:30])  # truncated
    sha256_path(path).unlink()  # and no hash beside it: it is used only if it loads
    assert load_verified(path) is None and "moved it aside" in caplog.text
    save_verified(path, {"stats": torch.ones(2)})
    sha256_path(path).unlink()  # written before hashes were kept: adopted once it loads
    assert torch.equal(load_verified(path)["stats"], torch.ones(2)) and sha256_path(path).exists()


def test_truncated_extractor_cache_is_moved_aside_and_fitted_again(tmp_path, registry, monkeypatch, caplog):
    import torch

    from genbench.metrics import extractors
    from genbench.runner.device import pick_device

    data = Runner(tmp_path, registry=registry).load_data("digits")
    fits = []

    def quick_fit(data, device, epochs=60, seed=0):  # the real fit takes seconds; its cache handling is the point
        fits.append(1)
        return extractors.seeded_init(lambda: extractors.ClassifierNet(1, 10, 8), seed).eval()

    monkeypatch.setattr(extractors, "train_classifier", quick_fit)
    first = extractors.ClassifierExtractor.load(data, tmp_path, pick_device("cpu"))
    (cached,) = (tmp_path / "extractors").glob("classifier-*.pt")
    cached.write_bytes(cached.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="genbench"):
        again = extractors.ClassifierExtractor.load(data, tmp_path, pick_device("cpu"))
    assert len(fits) == 2 and cached.with_name(cached.name + ".corrupt").exists() and cached.name in caplog.text
    assert again.sha256 == first.sha256 and torch.equal(again.features(data.unit("test")[:5]),
                                                        first.features(data.unit("test")[:5]))
    extractors.ClassifierExtractor.load(data, tmp_path, pick_device("cpu"))
    assert len(fits) == 2  # the good cache answers


def test_a_failed_cells_traceback_goes_to_its_log_not_the_terminal(tmp_path, registry, cache_dir, caplog):
    runner = make_runner(tmp_path, registry, cache_dir)
    with caplog.at_level(logging.DEBUG):
        result = runner.run_cell(CellSpec("raising", "digits", 0, "tiny", {}))
    assert result.state == "failed" and "sampler exploded on purpose" in result.error and "\n" not in result.error
    assert "Traceback" in result.traceback and "Traceback" in (result.run_dir / "log.txt").read_text()
    assert "Traceback" not in caplog.text  # what reaches the terminal's handlers
