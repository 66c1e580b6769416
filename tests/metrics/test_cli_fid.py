"""`genbench fid A B`: folders and .npz files, numbers, provenance, cache, errors."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from genbench.cli import main
from genbench.data.files import load_image_set


def _digits():
    from sklearn.datasets import load_digits

    return load_digits().images.astype(np.uint8)  # 8x8, levels 0..16


def test_fid_between_npz_and_folder_prints_numbers_and_provenance(tmp_path):
    x = _digits()
    np.savez(tmp_path / "a.npz", x=x[:300], levels=17)
    folder = tmp_path / "b"
    folder.mkdir()
    for i, im in enumerate(x[300:500]):
        Image.fromarray(np.round(im * 255 / 16).astype(np.uint8)).save(folder / f"{i:03d}.png")
    np.savez(tmp_path / "same.npz", samples=np.round(x[300:500] * 255 / 16).astype(np.uint8))  # the PNGs' pixels
    args = ["--extractor", "random-cnn", "--dataset", "digits", "--kid", "--kid-subsets", "10", "--pr",
            "--cache-dir", str(tmp_path / "cache")]
    res = CliRunner().invoke(main, ["fid", str(tmp_path / "a.npz"), str(folder), *args, "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    for word in ("fid", "kid", "precision", "recall", "density", "coverage", "sha256", "resize", "n=200 vs 300"):
        assert word in res.output
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["metric"] for r in rows] == ["fid", "kid", "precision", "recall", "density", "coverage"]
    assert rows[0]["reference"].endswith("a.npz:x") and rows[0]["details"]["cached"] == [False, False]
    assert rows[1]["details"]["subset_size"] == 200 and rows[1]["details"]["subsets"] == 10
    # the PNG folder and an .npz of the same uint8 pixels are the same images: the same FID
    res2 = CliRunner().invoke(main, ["fid", str(tmp_path / "a.npz"), str(tmp_path / "same.npz"), *args,
                                     "--json", str(tmp_path / "r2.json")])
    assert res2.exit_code == 0, res2.output
    rows2 = json.loads((tmp_path / "r2.json").read_text())
    assert rows2[0]["details"]["cached"] == [True, False]  # the reference's statistics came from the cache
    assert abs(rows2[0]["value"] - rows[0]["value"]) <= 1e-9 * rows[0]["value"]


def test_image_sets_accept_channels_last_and_reject_bad_input(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "nhwc.npz", arr_0=rgb)
    s = load_image_set(str(tmp_path / "nhwc.npz"))
    assert s.shape == (3, 16, 16) and s.n == 5
    batch = next(s.batches(10))
    assert batch.shape == (5, 3, 16, 16) and float(batch.max()) <= 1.0
    np.savez(tmp_path / "bad.npz", x=np.full((3, 8, 8), 300, dtype=np.int32))
    res = CliRunner().invoke(main, ["fid", str(tmp_path / "bad.npz"), str(tmp_path / "nhwc.npz")])
    assert res.exit_code != 0 and "outside 0..255" in res.output
    res = CliRunner().invoke(main, ["fid", str(tmp_path / "nhwc.npz"), str(tmp_path / "nope")])
    assert res.exit_code != 0 and "neither a folder" in res.output
    res = CliRunner().invoke(main, ["fid", str(tmp_path / "nhwc.npz"), str(tmp_path / "nhwc.npz"), "--extractor", "incepton"])
    assert res.exit_code != 0 and "did you mean 'inception'" in res.output
