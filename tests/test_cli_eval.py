"""`genbench eval SAMPLES --dataset D`: samples made elsewhere scored into a run folder of their own, with the rows
a trained cell writes (tagged external), accepted by the report; every bad input one line and no run folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from genbench.cli import main
from genbench.data.files import resolve_dataset
from genbench.runner import Runner
from genbench.runner.cells import CellSpec

FAST = ["--extractors", "random-cnn"]
N = 60  # samples per evaluation: small, but above PRDC's k=5 neighbours


@pytest.fixture(scope="module")
def digits(registry):
    return resolve_dataset("digits", registry).load()


def _eval(tmp_path, cache_dir, samples, *args: str):
    return CliRunner().invoke(main, ["eval", str(samples), "--dataset", "digits", "--out", str(tmp_path / "out"),
                                     "--cache-dir", str(cache_dir), *FAST, *args])


def _run_dir(tmp_path, name: str):
    (run_dir,) = list((tmp_path / "out" / "runs").glob(f"{name}-digits-s0-*"))
    return run_dir


def _rows(run_dir) -> dict[tuple[str, str], dict]:
    return {(r["metric"], r["extractor"]): r for r in json.loads((run_dir / "rows.json").read_text())}


def _floor_images(digits, n: int, seed: int = 0) -> torch.Tensor:
    """The real images the floor row scores (EvalContext.floor_features: a seeded choice from val then train)."""
    pool = digits.reference_pool()
    return pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]]


def test_eval_rows_match_a_trained_cell_and_the_floor(process_registry, registry, digits, tmp_path, cache_dir):
    # the floor's own real images, handed in as samples, must score exactly the floor (the same code path as a
    # trained cell's samples); the runner's real-data row for the same seed and n must be the same number
    np.savez(tmp_path / "floor.npz", samples=_floor_images(digits, N).numpy(), levels=17)
    res = _eval(tmp_path, cache_dir, tmp_path / "floor.npz", "--name", "floor-copy", "--nfe", "7",
                "--images-per-second", "123.5", "--params", "4567")
    assert res.exit_code == 0, res.output
    run_dir = _run_dir(tmp_path, "floor-copy")
    rows = _rows(run_dir)
    fid, floor = rows[("fid", "random-cnn")], rows[("fid_floor", "random-cnn")]
    assert fid["n"] == floor["n"] == N and fid["role"] == "external" and fid["preset"] == "external"
    # equal up to float32 feature arithmetic (1e-5 relative; another real set of the same n differs by ~10%)
    assert fid["value"] == pytest.approx(floor["value"], rel=1e-5)
    details = json.loads(fid["details"])
    assert len(details["samples_sha256"]) == 64 and "conversion" not in details
    for metric in ("kid", "precision", "recall", "density", "coverage", "exact_copies", "closer_than_p5", "fid_train"):
        assert any(m == metric for m, _ in rows), metric
    assert rows[("nfe", "")]["value"] == 7 and rows[("images_per_second", "")]["value"] == 123.5
    assert rows[("parameters", "")]["value"] == 4567 and json.loads(rows[("nfe", "")]["details"])["source"].startswith("stated")
    assert ("latency", "") not in rows and ("train_seconds", "") not in rows  # they need the model itself
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["role"] == "external"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["identity"]["samples_sha256"] == details["samples_sha256"] and config["command"].startswith("genbench eval")
    assert (run_dir / "samples" / "external.npz").is_file() and (run_dir / "real_test.png").is_file()

    # the runner's own floor row (a trained cell of the reference model, same seed and n) is the same number
    runner = Runner(tmp_path / "out", registry=registry, progress=False, cache_dir=cache_dir, extractors=["random-cnn"])
    cell = runner.run_cell(CellSpec("independent", "digits", 0, "tiny", {"n_samples": N, "sample_batch_size": N}))
    assert cell.state == "done", cell.error
    trained_floor = next(r for r in cell.rows if r["metric"] == "fid_floor")
    assert trained_floor["n"] == N and trained_floor["value"] == pytest.approx(floor["value"], rel=1e-9)

    # the report takes both runs: the external row is ranked beside the trained model (not kept apart), tagged
    res = CliRunner().invoke(main, ["report", str(tmp_path / "out"), "--datasets", "digits:test", "--include-tiny"])
    assert res.exit_code == 0, res.output
    board = json.loads((tmp_path / "out" / "results.json").read_text())
    text = json.dumps(board)
    assert "floor-copy" in text and "external" in text
    quality = [r for r in _board_rows(board) if r.get("table") == "quality" and r.get("model") == "floor-copy"]
    assert quality and all(r["role"] == "external" and r["ranked"] for r in quality)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "floor-copy (external)" in markdown and "(external) (external)" not in markdown

    again = _eval(tmp_path, cache_dir, tmp_path / "floor.npz", "--name", "floor-copy", "--nfe", "7",
                  "--images-per-second", "123.5", "--params", "4567")
    assert again.exit_code == 0 and "[cached]" in again.output  # the same evaluation is found finished


def _board_rows(doc) -> list[dict]:
    """Every board row of results.json, wherever the document nests them."""
    out = []

    def walk(x):
        if isinstance(x, dict):
            if "model" in x and "role" in x and "ranked" in x:
                out.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return out


def test_the_test_split_scored_against_itself_is_zero_and_floats_are_quantised_once(process_registry, digits,
                                                                                      tmp_path, cache_dir):
    res = _eval(tmp_path, cache_dir, "digits:test", "--name", "itself")
    assert res.exit_code == 0, res.output
    assert abs(_rows(_run_dir(tmp_path, "itself"))[("fid", "random-cnn")]["value"]) < 1e-6  # identical sets
    # floats in [0, 1]: level round(x * 16), the runner's one quantisation, checked against numpy's rounding
    x = np.random.default_rng(1).random((N, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "floats.npz", x=x)
    res = _eval(tmp_path, cache_dir, tmp_path / "floats.npz", "--name", "floats")
    assert res.exit_code == 0, res.output
    with np.load(_run_dir(tmp_path, "floats") / "samples" / "external.npz") as saved:
        assert np.array_equal(saved["samples"], np.round(x * 16).astype(np.uint8)) and int(saved["levels"]) == 17


def test_resize_converts_explicitly_and_is_recorded(process_registry, digits, tmp_path, cache_dir):
    rgb = np.random.default_rng(2).integers(0, 256, size=(N, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=rgb, levels=256)
    res = _eval(tmp_path, cache_dir, tmp_path / "rgb.npz", "--name", "rgb")
    assert res.exit_code != 0 and "digits expects 1x8x8 images (C x H x W) with 17 levels" in res.output
    assert "--resize" in res.output and not (tmp_path / "out" / "runs").exists()
    res = _eval(tmp_path, cache_dir, tmp_path / "rgb.npz", "--name", "rgb", "--resize")
    assert res.exit_code == 0, res.output
    details = json.loads(_rows(_run_dir(tmp_path, "rgb"))[("fid", "random-cnn")]["details"])
    assert "RGB to grey" in details["conversion"] and "16x16 to 8x8" in details["conversion"]
    assert "levels 256 to 17" in details["conversion"]


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.mark.parametrize("case, needle", [
    ("empty folder", "holds no image files"),
    ("several sizes", "resize all images to one size"),
    ("nan floats", "NaN or infinite values in 1 of"),
    ("no images", "holds 0 images; scoring needs at least 2"),
    ("one image", "holds 1 image; scoring needs at least 2"),
    ("no usable array", "it needs 'train' and 'test', or one image array"),
    ("floats out of range", "floats must be in [0, 1]"),
    ("8-bit without levels", "add a 'levels' entry"),
    ("pixels off the levels", "8-bit pixels that are not 17 levels"),
    ("wrong split", "scored against the test split"),
])
def test_bad_samples_are_one_line_and_leave_no_run_folder(process_registry, tmp_path, cache_dir, case, needle):
    rng = np.random.default_rng(0)
    samples, dataset = tmp_path / "s.npz", "digits"
    if case == "empty folder":
        samples = tmp_path / "empty"
        samples.mkdir()
    elif case == "several sizes":
        samples = tmp_path / "pngs"
        _png(samples / "a.png", np.zeros((8, 8), np.uint8))
        _png(samples / "b.png", np.zeros((9, 8), np.uint8))
    elif case == "nan floats":
        x = rng.random((5, 1, 8, 8))
        x[3, 0, 2, 2] = np.nan
        np.savez(samples, x=x)
    elif case in ("no images", "one image"):
        np.savez(samples, x=np.zeros((0 if case == "no images" else 1, 1, 8, 8), np.uint8), levels=17)
    elif case == "no usable array":
        np.savez(samples, a=np.zeros((5, 8, 8)), b=np.zeros((5, 8, 8)))
    elif case == "floats out of range":
        np.savez(samples, x=rng.random((5, 1, 8, 8)) * 2 - 1)
    elif case == "8-bit without levels":
        np.savez(samples, x=rng.integers(0, 256, (5, 1, 8, 8)).astype(np.uint8))
    elif case == "pixels off the levels":
        samples = tmp_path / "pngs"
        for i in range(3):
            _png(samples / f"{i}.png", np.full((8, 8), 7, np.uint8))  # 7 is not round(k * 255 / 16) for any k
    elif case == "wrong split":
        np.savez(samples, x=np.zeros((5, 1, 8, 8), np.uint8), levels=17)
        dataset = "digits:train"
    res = CliRunner().invoke(main, ["eval", str(samples), "--dataset", dataset, "--out", str(tmp_path / "out"),
                                    "--cache-dir", str(cache_dir), *FAST])
    assert res.exit_code != 0 and needle in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out" / "runs").exists()


def test_a_failure_while_scoring_leaves_the_run_folder_failed_not_done(process_registry, tmp_path, cache_dir,
                                                                        monkeypatch):
    import genbench.runner.external as external

    def broken(ctx, needs=None):
        raise RuntimeError("a metric exploded on purpose")

    monkeypatch.setattr(external, "metric_measurements", broken)
    np.savez(tmp_path / "s.npz", x=np.zeros((N, 1, 8, 8), np.uint8), levels=17)
    res = _eval(tmp_path, cache_dir, tmp_path / "s.npz", "--name", "broken")
    assert res.exit_code != 0 and "a metric exploded on purpose" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    run_dir = _run_dir(tmp_path, "broken")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"
    assert not (run_dir / "rows.json").exists()
