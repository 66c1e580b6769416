"""`genbench export D --split S --to DIR|FILE.npz`: a split handed to other tools, read back unchanged."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from genbench.cli import main
from genbench.data.files import load_image_set, resolve_dataset
from genbench.data.samples import read_samples


def test_export_to_npz_and_pngs_round_trips_the_levels(process_registry, registry, tmp_path):
    data = resolve_dataset("digits", registry).load()
    res = CliRunner().invoke(main, ["export", "digits", "--split", "test", "--to", str(tmp_path / "test.npz")])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "test.npz") as f:
        assert np.array_equal(f["x"], data.test.numpy()) and int(f["levels"]) == 17
        assert np.array_equal(f["y"], data.test_labels.numpy())
    res = CliRunner().invoke(main, ["export", "digits:val", "--to", str(tmp_path / "val")])
    assert res.exit_code == 0, res.output
    pngs = sorted((tmp_path / "val").glob("*.png"))
    assert len(pngs) == len(data.val) and (tmp_path / "val" / "labels.csv").read_text().startswith("file,label\n")
    # 8-bit pixels are round(k * 255 / 16) (checked against the formula), and read back as the levels k exactly
    pixels = np.concatenate([b.numpy() for b in load_image_set(str(tmp_path / "val")).batches(100)]) * 255
    assert np.array_equal(np.round(pixels), np.round(data.val.numpy().astype(np.float64) * 255 / 16))
    back = read_samples(str(tmp_path / "val"), data.spec, "digits")
    assert back.conversion == "" and np.array_equal(back.levels.numpy(), data.val.numpy())


def test_export_refuses_in_one_line(process_registry, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    cases = [(["digits", "--to", str(tmp_path / "full")], "not an empty folder"),
             (["digits:val", "--split", "test", "--to", str(tmp_path / "a.npz")], "names the val split but --split says test"),
             (["digitz", "--to", str(tmp_path / "b.npz")], "did you mean 'digits'")]
    for args, needle in cases:
        res = CliRunner().invoke(main, ["export", *args])
        assert res.exit_code != 0 and needle in res.output, res.output
    assert not (tmp_path / "a.npz").exists() and not (tmp_path / "b.npz").exists()
