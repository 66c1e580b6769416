"""The real Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (CI installs it; skipped elsewhere)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genbench.data.mnist import FashionMNIST

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_debian(monkeypatch, tmp_path):
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.delenv("GENBENCH_DOWNLOAD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ds = FashionMNIST()
    assert ds.locate()[:2] == ("idx", DEBIAN)
    data = ds.load()
    assert data.sizes == {"train": 55000, "val": 5000, "test": 10000}
    assert data.split_id == "fashion-mnist-v1:seed20240612:train55000/val5000/test10000"
    assert data.train.dtype == torch.uint8 and data.spec.levels == 256 and int(data.train.max()) == 255
    # the published data set: 6 000 training and 1 000 test images per class (Xiao et al. 2017)
    pool_labels = torch.cat([data.train_labels, data.val_labels])
    assert pool_labels.bincount(minlength=10).tolist() == [6000] * 10
    assert data.test_labels.bincount(minlength=10).tolist() == [1000] * 10
    assert int(data.test_labels[0]) == 9  # the first test image is an ankle boot
    # mean intensity of the training images is 0.2860 (72.94/255), the usual normalisation constant
    pool = torch.cat([data.train, data.val]).double()
    assert abs(float(pool.mean()) / 255 - 0.2860) < 5e-4
