"""A user's .npz file or image folder: good data loads exactly, bad data gives one-line DataErrors; the
training data set and `genbench fid` read the same formats with the same reader."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.data import DataError
from genbench.data.files import ImageFolderDataset, NpzDataset, dataset_from_path, load_image_set


def one_line_error(dataset, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        dataset.load()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ---------------------------------------------------------------------- .npz
def test_npz_train_test_loads_exactly(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 5, size=(50, 6, 6), dtype=np.uint8)
    test = rng.integers(0, 5, size=(7, 6, 6), dtype=np.uint8)
    path = tmp_path / "toy.npz"
    np.savez(path, train=train, test=test, levels=5, y_train=rng.integers(0, 3, 50), y_test=rng.integers(0, 3, 7))
    data = dataset_from_path(str(path)).load()
    assert data.spec.shape == (1, 6, 6) and data.spec.levels == 5 and data.num_classes == 3
    assert data.sizes == {"train": 45, "val": 5, "test": 7}
    assert torch.equal(data.test[:, 0], torch.from_numpy(test))
    assert data.split_id.startswith("toy-v1:")


def test_npz_single_array_cuts_test_and_val(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, size=(100, 3, 4, 4), dtype=np.uint8)
    path = tmp_path / "x.npz"
    np.savez(path, x=x)
    data = NpzDataset(path).load()
    assert data.spec.shape == (3, 4, 4) and data.spec.levels == int(x.max()) + 1
    assert data.sizes == {"train": 81, "val": 9, "test": 10}
    assert torch.equal(torch.cat([data.train, data.val, data.test]).sort(0).values, torch.from_numpy(x).sort(0).values)


def test_npz_missing_file(tmp_path):
    one_line_error(NpzDataset(tmp_path / "nope.npz"), "not found", "nope.npz")


def test_npz_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip file")
    one_line_error(NpzDataset(path), "cannot read", "numpy.savez")


def test_npz_wrong_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, a=np.zeros((5, 4, 4), np.uint8), b=np.zeros((5, 4, 4), np.uint8))
    one_line_error(NpzDataset(path), "'train' and 'test'", "'a', 'b'", "samples, x, images")


def test_npz_empty_array(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, train=np.zeros((0, 4, 4), np.uint8), test=np.zeros((3, 4, 4), np.uint8))
    one_line_error(NpzDataset(path), "empty")


def test_npz_mixed_sizes(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, train=np.zeros((10, 4, 4), np.uint8), test=np.zeros((3, 5, 5), np.uint8))
    one_line_error(NpzDataset(path), "one size")


def test_npz_float_data(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, x=np.random.default_rng(2).random((10, 4, 4)).astype(np.float32))
    one_line_error(NpzDataset(path), "float32", "uint8")


def test_npz_values_above_levels(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, train=np.full((10, 4, 4), 7, np.uint8), test=np.zeros((3, 4, 4), np.uint8), levels=4)
    one_line_error(NpzDataset(path), "value 7", "levels=4")


def test_npz_negative_values(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, x=np.full((10, 4, 4), -1, np.int16))
    one_line_error(NpzDataset(path), "negative")


def test_npz_channels_last_and_any_image_key_load(tmp_path):
    x = np.random.default_rng(4).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=x)
    data = NpzDataset(tmp_path / "c.npz").load()
    assert data.spec.shape == (3, 8, 8)
    got = torch.cat([data.train, data.val, data.test]).permute(0, 2, 3, 1).reshape(10, -1).numpy()
    assert sorted(map(bytes, got)) == sorted(map(bytes, x.reshape(10, -1)))
    np.savez(tmp_path / "only.npz", mine=x, y=np.zeros(10, np.int64))  # the only image array, with labels
    labelled = NpzDataset(tmp_path / "only.npz").load()
    assert labelled.has_labels and labelled.num_classes == 1 and labelled.sizes["train"] == 8


def test_dataset_and_fid_reader_see_the_same_pixels(tmp_path):
    x = np.random.default_rng(5).integers(0, 256, size=(12, 5, 6, 3), dtype=np.uint8)
    write_pngs(tmp_path / "f", x, "RGB")
    Image.fromarray(x[0]).save(tmp_path / "f" / "extra.jpg")  # any image format PIL reads
    folder = ImageFolderDataset(tmp_path / "f").load()
    imgs = load_image_set(str(tmp_path / "f"))
    assert imgs.n == 13 and imgs.shape == folder.spec.shape == (3, 5, 6)
    as_set = (next(imgs.batches(100)) * 255).round().to(torch.uint8)
    as_data = torch.cat([folder.train, folder.val, folder.test])
    assert sorted(map(bytes, as_set.numpy())) == sorted(map(bytes, as_data.numpy()))


def test_npz_labels_for_one_split_only(tmp_path):
    path = tmp_path / "l.npz"
    np.savez(path, train=np.zeros((10, 4, 4), np.uint8), test=np.zeros((3, 4, 4), np.uint8), y_train=np.zeros(10, np.int64))
    one_line_error(NpzDataset(path), "y_train but no y_test")


def test_npz_too_few_images(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, x=np.zeros((2, 4, 4), np.uint8))
    one_line_error(NpzDataset(path), "need at least 3")


# ---------------------------------------------------------------------- PNG folder
def write_pngs(folder, arrays, mode):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode=mode).save(folder / f"{i:03d}.png")


def test_folder_grey_and_rgb_load_exactly(tmp_path):
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, size=(30, 5, 7), dtype=np.uint8)
    write_pngs(tmp_path / "grey", grey, "L")
    data = ImageFolderDataset(tmp_path / "grey").load()
    assert data.spec.shape == (1, 5, 7) and data.spec.levels == 256
    got = torch.cat([data.train, data.val, data.test])[:, 0].reshape(30, -1).numpy()
    assert sorted(map(bytes, got)) == sorted(map(bytes, grey.reshape(30, -1)))
    rgb = rng.integers(0, 256, size=(12, 4, 4, 3), dtype=np.uint8)
    write_pngs(tmp_path / "rgb", rgb, "RGB")
    data = dataset_from_path(str(tmp_path / "rgb")).load()
    assert data.spec.shape == (3, 4, 4)
    got = torch.cat([data.train, data.val, data.test]).permute(0, 2, 3, 1).reshape(12, -1).numpy()
    assert sorted(map(bytes, got)) == sorted(map(bytes, rgb.reshape(12, -1)))


def test_folder_missing(tmp_path):
    one_line_error(ImageFolderDataset(tmp_path / "absent"), "not found")


def test_folder_without_images(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    one_line_error(ImageFolderDataset(tmp_path / "d"), "no image files", ".png")


def test_folder_mixed_sizes(tmp_path):
    write_pngs(tmp_path / "d", [np.zeros((4, 4), np.uint8)] * 3, "L")
    Image.fromarray(np.zeros((5, 4), np.uint8), mode="L").save(tmp_path / "d" / "zzz.png")
    one_line_error(ImageFolderDataset(tmp_path / "d"), "zzz.png", "one size")


def test_folder_mixed_grey_and_rgb_is_read_as_rgb(tmp_path):
    write_pngs(tmp_path / "d", [np.full((4, 4), 7, np.uint8)] * 3, "L")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), mode="RGB").save(tmp_path / "d" / "zzz.png")
    data = ImageFolderDataset(tmp_path / "d").load()
    assert data.spec.shape == (3, 4, 4)
    assert sorted(int(v) for v in torch.cat([data.train, data.val, data.test]).amax((1, 2, 3))) == [0, 7, 7, 7]
