"""`genbench run --models M --checkpoint PATH`: a genbench checkpoint scored without training (its weights are
what gets sampled), and every wrong checkpoint one line before any run folder exists."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genbench.cli import main
from genbench.runner import Runner
from genbench.runner.cells import CellSpec

FAST = ["--extractors", "random-cnn", "--no-progress", "--no-report", "--preset", "tiny"]


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("trained")
    runner = Runner(out, registry=registry, progress=False, cache_dir=cache_dir, extractors=["random-cnn"])
    result = runner.run_cell(CellSpec("independent", "digits", 0, "tiny", {"max_steps": 3}))
    assert result.state == "done", result.error
    return result.run_dir


def test_a_checkpoint_is_scored_with_its_own_weights(process_registry, trained, tmp_path):
    ckpt = trained / "checkpoints" / "last.pt"
    assert torch.load(ckpt, weights_only=True)["identity"] == {
        "model": "independent", "data": {"channels": 1, "height": 8, "width": 8, "levels": 17}}
    res = CliRunner().invoke(main, ["run", "--models", "independent", "--checkpoint", str(ckpt), *FAST,
                                    "--out", str(tmp_path / "scored")])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((tmp_path / "scored" / "runs").glob("independent-digits-s0-*"))
    assert run_dir.name != trained.name  # the checkpoint is part of the identity
    assert not (run_dir / "checkpoints").exists()  # nothing was trained
    config = json.loads((run_dir / "config.json").read_text())
    assert config["identity"]["checkpoint"]["step"] == 3 and len(config["identity"]["checkpoint"]["sha256"]) == 64
    rows = json.loads((run_dir / "rows.json").read_text())
    assert {r["value"] for r in rows if r["metric"] == "train_steps"} == {3.0}
    # the same weights and seed draw the same samples as the trained cell did: the weights were loaded
    (mine,) = (run_dir / "samples").glob("*.npz")
    with np.load(mine) as a, np.load(trained / "samples" / mine.name) as b:
        assert np.array_equal(a["samples"], b["samples"])
    # and differ from an untrained model's (so the comparison above can fail)
    fresh = CliRunner().invoke(main, ["run", "--models", "independent", "--steps", "0", *FAST,
                                      "--out", str(tmp_path / "fresh")])
    assert fresh.exit_code == 0, fresh.output
    (untrained,) = (tmp_path / "fresh" / "runs").glob(f"*/samples/{mine.name}")
    with np.load(mine) as a, np.load(untrained) as b:
        assert not np.array_equal(a["samples"], b["samples"])


def test_wrong_checkpoints_are_one_line_and_leave_no_run_folder(process_registry, trained, tmp_path):
    ckpt = str(trained / "checkpoints" / "best.pt" if (trained / "checkpoints" / "best.pt").exists()
               else trained / "checkpoints" / "last.pt")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "bare.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    folder = tmp_path / "pngs"  # digits as 8-bit PNGs: 1x8x8 images but K=256, another data spec
    assert CliRunner().invoke(main, ["export", "digits:train", "--to", str(folder)]).exit_code == 0
    cases = [
        (["--models", "replay", "--checkpoint", ckpt], "is of model 'independent', not 'replay'"),
        (["--models", "independent", "--dataset", str(folder), "--checkpoint", ckpt],
         "was trained on data 1x8x8, K=17 (digits), but"),
        (["--models", "independent", "--checkpoint", str(tmp_path / "bare.pt")], "is not a genbench checkpoint (no model"),
        (["--models", "independent", "--checkpoint", str(tmp_path / "text.pt")], "is not a genbench checkpoint (it does"),
        (["--models", "independent,replay", "--checkpoint", ckpt], "give that one model with --models"),
    ]
    for args, needle in cases:
        res = CliRunner().invoke(main, ["run", *args, *FAST, "--out", str(tmp_path / "out")])
        assert res.exit_code != 0 and needle in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out" / "runs").exists()
