"""MNIST / Fashion-MNIST / binarised MNIST through the real loaders, on small IDX files written here.

No network: GENBENCH_DOWNLOAD is unset (or torchvision's class is replaced by a fake
that records the call), the default download folder and the Debian folder are pointed
at empty temporary folders.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.data import DataError
from genbench.data import mnist as mnist_mod
from genbench.data.idx import read_idx, write_idx
from genbench.data.mnist import FILES, BinarizedMNIST, FashionMNIST, MNIST, binarize

N_TRAIN, N_TEST = 40, 12


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No env data folders, no downloads, an empty default cache, and no Debian folder."""
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.delenv("GENBENCH_DOWNLOAD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "no-debian" / "fashion-mnist"),))


def fake_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=N_TRAIN).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=N_TEST).astype(np.uint8),
    }


def write_files(folder: Path, arrays: dict[str, np.ndarray], gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return folder


def assert_same_content(data, arrays: dict[str, np.ndarray]) -> None:
    """The splits are exactly the written images: test = test file, train+val = a partition of the train file."""
    assert torch.equal(data.test[:, 0], torch.from_numpy(arrays["test_images"]))
    assert torch.equal(data.test_labels, torch.from_numpy(arrays["test_labels"]).long())
    pool = torch.cat([data.train, data.val])[:, 0].reshape(len(data.train) + len(data.val), -1)
    expected = torch.from_numpy(arrays["train_images"]).reshape(N_TRAIN, -1)
    # same multiset of rows (images are random, so rows are distinct)
    assert sorted(map(bytes, pool.numpy())) == sorted(map(bytes, expected.numpy()))


def test_idx_reader_roundtrip_raw_and_gzip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, arr)
        back = read_idx(tmp_path / name)
        assert back.dtype == np.uint8 and back.shape == (2, 3, 4) and np.array_equal(back, arr)
    # the header is the documented big-endian one: 0 0 8 ndim, then uint32 sizes
    raw = (tmp_path / "a-idx3-ubyte").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and int.from_bytes(raw[4:8], "big") == 2 and len(raw) == 16 + 24
    assert gzip.decompress((tmp_path / "a-idx3-ubyte.gz").read_bytes()) == raw


def test_idx_reader_agrees_with_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    arrays = fake_arrays(1)
    write_files(tmp_path, arrays, gz=False)
    assert np.array_equal(read_idx(tmp_path / FILES["train_images"]), read_image_file(str(tmp_path / FILES["train_images"])).numpy())
    assert np.array_equal(read_idx(tmp_path / FILES["test_labels"]), read_label_file(str(tmp_path / FILES["test_labels"])).numpy())


@pytest.mark.parametrize("damage", ["truncate", "magic", "not-gzip"])
def test_idx_reader_rejects_damaged_files(tmp_path, damage):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((3, 28, 28), np.uint8))
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[:-5])
    elif damage == "magic":
        path.write_bytes(b"\x01\x02" + raw[2:])
    else:
        path = tmp_path / "x-idx3-ubyte.gz"
        path.write_bytes(raw)  # claims .gz but is not compressed
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_fashion_mnist_from_gzip_idx_in_data_root(tmp_path):
    arrays = fake_arrays(2)
    root = write_files(tmp_path / "root", arrays, gz=True)
    ds = FashionMNIST(root)
    assert ds.locate()[:2] == ("idx", root)
    data = ds.load()
    assert data.spec.shape == (1, 28, 28) and data.spec.levels == 256 and data.num_classes == 10
    assert data.sizes == {"train": 36, "val": 4, "test": 12}  # validation = 10% of the train file
    assert data.split_id == "fashion-mnist-v1:seed20240612:train36/val4/test12"
    assert_same_content(data, arrays)
    again = FashionMNIST(root).load()
    assert again.data_hash == data.data_hash and torch.equal(again.val, data.val)  # fixed split


def test_mnist_torchvision_layout_read_by_torchvision(tmp_path, monkeypatch):
    arrays = fake_arrays(3)
    root = tmp_path / "tv"
    write_files(root / "MNIST" / "raw", arrays, gz=False)
    calls = []
    real = MNIST._read_torchvision

    def spy(self, r, download=False):
        calls.append((r, download))
        return real(self, r, download)

    monkeypatch.setattr(MNIST, "_read_torchvision", spy)
    data = MNIST(root).load()
    assert calls == [(root, False)]  # torchvision's class, download=False
    assert data.split_id.startswith("mnist-v1:") and data.sizes["test"] == N_TEST
    assert_same_content(data, arrays)


def test_environment_variable_and_alias_folder(tmp_path, monkeypatch):
    arrays = fake_arrays(4)
    env_root = tmp_path / "env"
    write_files(env_root / "fashion-mnist", arrays, gz=False)  # raw files in an alias sub-folder
    monkeypatch.setenv("GENBENCH_DATA", os.pathsep.join([str(tmp_path / "empty"), str(env_root)]))
    data = FashionMNIST().load()
    assert_same_content(data, arrays)
    # --data-root wins over the environment variable
    other = fake_arrays(5)
    root = write_files(tmp_path / "root", other, gz=True)
    assert_same_content(FashionMNIST(root).load(), other)


def test_debian_folder_is_searched(tmp_path, monkeypatch):
    arrays = fake_arrays(6)
    debian = write_files(tmp_path / "usr-share" / "fashion-mnist", arrays, gz=True)
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(debian),))
    assert_same_content(FashionMNIST().load(), arrays)
    with pytest.raises(DataError):  # MNIST does not look in Fashion-MNIST's Debian folder
        MNIST().load()


def test_missing_files_one_line_error_names_the_three_ways(tmp_path):
    with pytest.raises(DataError) as info:
        FashionMNIST(tmp_path / "nothing-here").load()
    msg = str(info.value)
    assert "\n" not in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "GENBENCH_DOWNLOAD=1" in msg
    assert "--data-root" in msg and "GENBENCH_DATA" in msg
    assert str(tmp_path / "nothing-here") in msg  # says where it looked
    with pytest.raises(DataError) as info:
        MNIST(tmp_path / "nothing-here").load()
    assert "\n" not in str(info.value) and "GENBENCH_DOWNLOAD=1" in str(info.value) and "apt-get" not in str(info.value)


def test_incomplete_folder_is_not_taken(tmp_path):
    root = write_files(tmp_path / "root", fake_arrays(7), gz=True)
    (root / (FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DataError, match="files not found"):
        FashionMNIST(root).load()


def test_mismatched_labels_are_an_error(tmp_path):
    arrays = fake_arrays(8)
    arrays["train_labels"] = arrays["train_labels"][:-1]
    with pytest.raises(DataError, match="labels"):
        MNIST(write_files(tmp_path / "root", arrays, gz=True)).load()


def test_download_only_when_asked(tmp_path, monkeypatch):
    """GENBENCH_DOWNLOAD=1 hands torchvision download=True into --data-root; a failure is one line."""
    import torchvision.datasets
    from urllib.error import URLError

    seen = []

    class FakeTorchvision:
        def __init__(self, root, train=True, download=False):
            seen.append((root, train, download))
            raise URLError("no network here")

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeTorchvision)
    with pytest.raises(DataError, match="files not found"):
        MNIST(tmp_path / "dl").load()
    assert seen == []  # not asked: no download attempt
    monkeypatch.setenv("GENBENCH_DOWNLOAD", "1")
    with pytest.raises(DataError) as info:
        MNIST(tmp_path / "dl").load()
    assert seen == [(str(tmp_path / "dl"), True, True)]
    assert "cannot download" in str(info.value) and "\n" not in str(info.value)


def test_binarize_is_fixed_and_follows_intensity():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = 0, 255
    a, b = binarize(images, 11), binarize(images, 11)
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1}
    assert not np.array_equal(a, binarize(images, 12))
    assert a[:, 0, 0].max() == 0 and a[:, 0, 1].min() == 1  # P(1) = x/255: exact at 0 and 255
    # mean of Bernoulli(x/255) over 235 200 pixels: within 5 standard errors
    p = images / 255.0
    se = np.sqrt((p * (1 - p)).sum()) / p.size
    assert abs(a.mean() - p.mean()) < 5 * se


def test_binarized_mnist_splits(tmp_path):
    arrays = fake_arrays(9)
    root = write_files(tmp_path / "root", arrays, gz=True)
    data = BinarizedMNIST(root).load()
    assert data.spec.levels == 2 and data.spec.shape == (1, 28, 28)
    assert data.sizes == {"train": 34, "val": 6, "test": 12}  # val = train file // 6 (50k/10k on the real one)
    assert "bernoulli-v1-seed20240613" in data.split_id and data.split_id.startswith("binarized-mnist-v1:")
    for split in ("train", "val", "test"):
        assert int(getattr(data, split).max()) <= 1
    # test = the binarised test file, pixel for pixel
    assert torch.equal(data.test[:, 0], torch.from_numpy(binarize(arrays["test_images"], mnist_mod.BINARIZE_SEED + 1)))
    assert BinarizedMNIST(root).load().data_hash == data.data_hash
    # same images and the same validation indices as MNIST, binarised
    plain = MNIST(root).load()
    assert torch.equal(data.test_labels, plain.test_labels)
    assert (data.test[plain.test == 0] == 0).all()  # black pixels stay 0


def test_registered(registry):
    for name in ("mnist", "fashion-mnist", "binarized-mnist", "cifar10", "calibration", "digits"):
        assert name in registry.datasets
