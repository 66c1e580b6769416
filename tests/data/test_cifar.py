"""CIFAR-10 through torchvision's CIFAR10 class on small python-pickle batches written here.

torchvision md5-checks every batch against the real files' checksums; the tests write
their own tiny batches, so they point torchvision's checksum table at those files'
md5s (the loading code itself runs unchanged).  Unpatched, the same files must be
refused as corrupted.
"""
from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

from genbench.data import DataError
from genbench.data.cifar import CIFAR10

PER_BATCH, N_TEST = 6, 8


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.delenv("GENBENCH_DOWNLOAD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def write_cifar(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The python version's layout: data_batch_1..5, test_batch, batches.meta (pickled dicts, rows of 3072 = R,G,B planes)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"train": [], "train_labels": [], "test": None, "test_labels": None}
    for i in range(1, 6):
        rows = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=PER_BATCH).tolist()
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {i} of 5", "labels": labels, "data": rows,
                         "filenames": [f"img{i}_{j}.png" for j in range(PER_BATCH)]}, f)
        out["train"].append(rows)
        out["train_labels"] += labels
    rows = rng.integers(0, 256, size=(N_TEST, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=N_TEST).tolist()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": labels, "data": rows, "filenames": []}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
                     "num_cases_per_batch": PER_BATCH, "num_vis": 3072}, f)
    return {
        "train": np.concatenate(out["train"]).reshape(-1, 3, 32, 32),
        "train_labels": np.asarray(out["train_labels"]),
        "test": rows.reshape(-1, 3, 32, 32),
        "test_labels": np.asarray(labels),
    }


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trust_checksums(monkeypatch, folder: Path) -> None:
    """Point torchvision's checksum table at the files the test wrote."""
    monkeypatch.setattr(TorchvisionCIFAR10, "train_list", [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(TorchvisionCIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(TorchvisionCIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")})


def test_cifar10_from_pickle_batches(tmp_path, monkeypatch):
    root = tmp_path / "root"
    truth = write_cifar(root / "cifar-10-batches-py")
    trust_checksums(monkeypatch, root / "cifar-10-batches-py")
    data = CIFAR10(root).load()
    assert data.spec.shape == (3, 32, 32) and data.spec.levels == 256 and data.num_classes == 10
    assert data.sizes == {"train": 27, "val": 3, "test": N_TEST}
    assert data.split_id == "cifar10-v1:seed20240614:train27/val3/test8"
    # channels-first, planes R,G,B exactly as stored in the batches
    assert torch.equal(data.test, torch.from_numpy(truth["test"]))
    assert torch.equal(data.test_labels, torch.from_numpy(truth["test_labels"]))
    pool = torch.cat([data.train, data.val]).reshape(30, -1).numpy()
    assert sorted(map(bytes, pool)) == sorted(map(bytes, truth["train"].reshape(30, -1)))
    assert torch.equal(data.reference_pool(), torch.cat([data.val, data.train]))
    assert CIFAR10(root).load().data_hash == data.data_hash


def test_cifar10_root_may_be_the_batches_folder_or_env(tmp_path, monkeypatch):
    folder = tmp_path / "x" / "cifar-10-batches-py"
    truth = write_cifar(folder, seed=1)
    trust_checksums(monkeypatch, folder)
    assert torch.equal(CIFAR10(folder).load().test, torch.from_numpy(truth["test"]))
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "x"))
    assert torch.equal(CIFAR10().load().test, torch.from_numpy(truth["test"]))


def test_cifar10_archive_is_unpacked(tmp_path, monkeypatch):
    staging = tmp_path / "staging" / "cifar-10-batches-py"
    truth = write_cifar(staging, seed=2)
    trust_checksums(monkeypatch, staging)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(staging, arcname="cifar-10-batches-py")
    data = CIFAR10(root).load()
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert torch.equal(data.test, torch.from_numpy(truth["test"]))


def test_cifar10_corrupted_files_are_refused(tmp_path):
    root = tmp_path / "root"
    write_cifar(root / "cifar-10-batches-py")  # md5s differ from the real CIFAR-10's
    with pytest.raises(DataError) as info:
        CIFAR10(root).load()
    msg = str(info.value)
    assert "\n" not in msg and "corrupted" in msg and "GENBENCH_DOWNLOAD=1" in msg


def test_cifar10_missing_files_one_line(tmp_path):
    with pytest.raises(DataError) as info:
        CIFAR10(tmp_path / "empty").load()
    msg = str(info.value)
    assert "\n" not in msg and "not found" in msg
    assert "GENBENCH_DOWNLOAD=1" in msg and "--data-root" in msg and "GENBENCH_DATA" in msg
    assert str(tmp_path / "empty") in msg
