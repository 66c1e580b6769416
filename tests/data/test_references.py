"""Named references NAME:SPLIT (genbench.data.references): parsing, the split they load, and `genbench fid`
accepting them where it took only paths (`genbench fid digits:test x.npz` used to fail)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.data.base import DataError
from genbench.data.files import resolve_dataset
from genbench.data.references import Reference, board_datasets, dataset_and_split, load_images, parse_reference
from genbench.plugins import UnknownNameError


def test_parsing_names_paths_and_mistakes(registry, tmp_path):
    assert parse_reference("digits:test", registry) == Reference("digits", "test")
    assert parse_reference("digits:train", registry) == Reference("digits", "train")
    assert parse_reference("digits", registry) is None  # a bare name is not a reference
    assert dataset_and_split("digits", registry) == Reference("digits", "test")
    np.savez(tmp_path / "data.npz", train=np.zeros((10, 8, 8), np.uint8), test=np.zeros((4, 8, 8), np.uint8))
    assert parse_reference(f"{tmp_path}/data.npz:val", registry) == Reference(f"{tmp_path}/data.npz", "val")
    odd = tmp_path / "a:test"  # an existing path keeps its meaning even if it looks like a reference
    odd.mkdir()
    assert parse_reference(str(odd), registry) is None
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        parse_reference("digitz:test", registry)
    with pytest.raises(DataError, match="unknown split 'tset'"):
        parse_reference("digits:tset", registry)
    with pytest.raises(DataError, match="neither a registered data set nor an existing"):
        parse_reference(f"{tmp_path}/missing.npz:test", registry)


def test_a_reference_is_the_split_itself_with_the_runners_cache_key(registry):
    data = resolve_dataset("digits", registry).load()
    images = load_images("digits:val", registry)
    assert images.n == len(data.val) and images.shape == data.spec.shape
    assert images.content == f"{data.data_hash}:val"  # EvalContext.reference_features' key for a split
    got = np.concatenate([b.numpy() for b in images.batches(64)])
    assert np.array_equal(got, data.val.numpy() / 16.0)  # k / (K-1), independently computed


def test_fid_takes_named_references(process_registry, registry, tmp_path, cache_dir):
    data = resolve_dataset("digits", registry).load()
    np.savez(tmp_path / "val.npz", x=data.val.numpy(), levels=17)
    args = ["--extractors", "random-cnn", "--cache-dir", str(cache_dir)]
    res = CliRunner().invoke(main, ["fid", "digits:test", str(tmp_path / "val.npz"), *args, "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output  # --dataset comes from the reference (random-cnn is fitted to digits)
    res2 = CliRunner().invoke(main, ["fid", "digits:test", "digits:val", *args, "--json", str(tmp_path / "b.json")])
    assert res2.exit_code == 0, res2.output
    a, b = (json.loads((tmp_path / f).read_text())[0] for f in ("a.json", "b.json"))
    # the same images either way: equal up to float32 feature arithmetic (1e-5 relative)
    assert a["value"] == pytest.approx(b["value"], rel=1e-5) and a["value"] > 0
    assert b["reference"].startswith("digits:test (digits-v1") and b["n_reference"] == len(data.test)
    res3 = CliRunner().invoke(main, ["fid", "digits:test", "digits:test", *args, "--json", str(tmp_path / "c.json")])
    assert res3.exit_code == 0, res3.output
    assert abs(json.loads((tmp_path / "c.json").read_text())[0]["value"]) < 1e-6  # a set against itself
    res4 = CliRunner().invoke(main, ["fid", "digitz:test", "digits:val", *args])
    assert res4.exit_code != 0 and "did you mean 'digits'" in res4.output


def test_report_filters_take_the_test_split_by_name():
    assert board_datasets(["digits:test", "fashion-*", "data.npz:test"]) == ["digits", "fashion-*", "data.npz"]
    with pytest.raises(DataError, match="leaderboards score against the test split; give digits or digits:test"):
        board_datasets(["digits:train"])
