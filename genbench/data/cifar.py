"""CIFAR-10 (Krizhevsky 2009): 32x32 RGB, K=256, 10 classes, through torchvision's CIFAR10.

Files are found as described in :mod:`genbench.data.sources`: a searched folder ``R``
holds ``R/cifar-10-batches-py/`` (the python pickle batches, md5-checked by torchvision),
or the archive ``R/cifar-10-python.tar.gz`` (unpacked there on first use), or ``R`` is
itself the ``cifar-10-batches-py`` folder.  ``GENBENCH_DOWNLOAD=1`` lets torchvision download.

Splits: test = the official test batch (10 000); validation = 5 000 images cut from the
50 000 training images with a fixed seed; train = the other 45 000.  The FID floor's
held-out real pool is validation + train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genbench.data.base import DataError, Dataset, DataSplits, make_splits, split_indices, validation_size
from genbench.data.sources import DATA_ENV, DOWNLOAD_ENV, describe, download_allowed, download_root, search_roots
from genbench.model import DataSpec

SPLIT_SEED = 20240614
SPLIT_VERSION = "v1"
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"


class CIFAR10(Dataset):
    """CIFAR-10 32x32x3, K=256: train 45 000 / val 5 000 / test 10 000."""

    name = "cifar10"
    description = "CIFAR-10 32x32 RGB, K=256, 10 classes (files via --data-root / $GENBENCH_DATA / GENBENCH_DOWNLOAD=1)"
    spec = DataSpec(channels=3, height=32, width=32, levels=256)
    split_sizes = {"train": 45000, "val": 5000, "test": 10000}

    def how_to_get(self, roots: list[Path]) -> str:
        return (
            f"looked in {describe(roots)}; get them by {DOWNLOAD_ENV}=1 to let torchvision download them, "
            f"or --data-root DIR, or {DATA_ENV}=DIR, where DIR holds {FOLDER}/ (or {ARCHIVE})"
        )

    def locate(self) -> tuple[Path | None, list[Path]]:
        """The root folder holding ``cifar-10-batches-py`` (unpacking an archive found there), and the searched roots."""
        roots = search_roots(self.root)
        for r in roots:
            if r.name == FOLDER and (r / "batches.meta").is_file():
                return r.parent, roots
            if (r / FOLDER / "batches.meta").is_file():
                return r, roots
        for r in roots:
            if (r / ARCHIVE).is_file():
                from torchvision.datasets.utils import extract_archive

                try:
                    extract_archive(str(r / ARCHIVE), str(r))
                except Exception as exc:
                    raise DataError(f"{self.name}: cannot unpack {r / ARCHIVE} ({type(exc).__name__}: {exc}); unpack it by hand") from None
                return r, roots
        return None, roots

    def read_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Official train/test images (N, 3, 32, 32) uint8 and labels, via torchvision.datasets.CIFAR10."""
        from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

        root, roots = self.locate()
        download = False
        if root is None:
            if not download_allowed():
                raise DataError(f"{self.name} files not found: {self.how_to_get(roots)}")
            root, download = download_root(self.root), True
        try:
            train = TorchvisionCIFAR10(str(root), train=True, download=download)
            test = TorchvisionCIFAR10(str(root), train=False, download=False)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            verb = "download" if download else "read"
            raise DataError(
                f"{self.name}: cannot {verb} {root / FOLDER} ({first}); delete it and fetch it again: {self.how_to_get(roots)}"
            ) from None
        out = []
        for ds in (train, test):
            x = np.asarray(ds.data)
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or len(ds.targets) != len(x):
                raise DataError(f"{self.name}: {root / FOLDER} holds {x.dtype} {x.shape} images; expected uint8 N x 32 x 32 x 3")
            out += [x.transpose(0, 3, 1, 2), np.asarray(ds.targets, dtype=np.int64)]
        return out[0], out[1], out[2], out[3]

    def load(self) -> DataSplits:
        x_tr, y_tr, x_te, y_te = self.read_arrays()
        idx = split_indices(len(x_tr), {"val": validation_size(len(x_tr))}, SPLIT_SEED)
        images = {k: x_tr[v] for k, v in idx.items()} | {"test": x_te}
        labels = {k: y_tr[v] for k, v in idx.items()} | {"test": y_te}
        sizes = "/".join(f"{k}{len(images[k])}" for k in ("train", "val", "test"))
        return make_splits(self.spec, images, labels, split_id=f"{self.name}-{SPLIT_VERSION}:seed{SPLIT_SEED}:{sizes}", num_classes=10)
