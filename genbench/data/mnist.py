"""MNIST, Fashion-MNIST (28x28 grey, K=256) and binarised MNIST (K=2), from IDX files.

Files are found as described in :mod:`genbench.data.sources`.  In each searched folder
``R`` genbench accepts torchvision's layout ``R/<MNIST|FashionMNIST>/raw/`` (read with
torchvision's own dataset class, ``download=False``) and, raw or gzip, the four IDX files
directly in ``R`` or in ``R/<alias>`` (``R/fashion-mnist``, ``R/mnist``, ...), read with
:func:`genbench.data.idx.read_idx`.  Debian's ``dataset-fashion-mnist`` installs the four
``.gz`` files in /usr/share/datasets/fashion-mnist, which is searched for Fashion-MNIST.

Splits: the 10 000 test images are the official test file; validation is cut from the
official training file with a fixed seed (5 000 images; 10 000 for binarised MNIST),
the rest is train.  The FID floor's held-out real pool is validation + train
(:meth:`DataSplits.reference_pool`), never test.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from genbench.data.base import DataError, Dataset, DataSplits, make_splits, split_indices, validation_size
from genbench.data.idx import read_idx
from genbench.data.sources import DATA_ENV, DOWNLOAD_ENV, describe, download_allowed, download_root, search_roots
from genbench.model import DataSpec

SPLIT_SEED = 20240612
SPLIT_VERSION = "v1"
BINARIZE_SEED = 20240613
BINARIZE_VERSION = "v1"

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train images, train labels, test images, test labels


def _find_idx_folder(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (each raw or ``.gz``; raw preferred), or None if any is missing."""
    found: dict[str, Path] = {}
    for key, stem in FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def check_arrays(name: str, arrays: Arrays, where: str) -> Arrays:
    """Shapes, dtypes and label ranges of MNIST-format arrays; one-line DataError otherwise."""
    x_tr, y_tr, x_te, y_te = arrays
    for what, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{name} {what} images in {where} are {x.dtype} {x.shape}, expected uint8 N x 28 x 28; fetch the files again")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{name} {what} labels in {where} have shape {y.shape} for {len(x)} images; fetch the files again")
        if len(x) == 0:
            raise DataError(f"{name} {what} file in {where} holds no images; fetch the files again")
        if y.min() < 0 or y.max() > 9:
            raise DataError(f"{name} {what} labels in {where} lie outside 0..9; fetch the files again")
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


class IdxImageDataset(Dataset):
    """Common loader of the MNIST-format data sets (train/test IDX files, 28x28 grey, 10 classes)."""

    torchvision_class: ClassVar[str]  # "MNIST" / "FashionMNIST": torchvision's class and folder name
    aliases: ClassVar[tuple[str, ...]] = ()  # sub-folders of a root that may hold the IDX files directly
    system_dirs: ClassVar[tuple[str, ...]] = ()  # folders a system package installs the files to
    system_package: ClassVar[str | None] = None
    spec = DataSpec(channels=1, height=28, width=28, levels=256)
    split_sizes = {"train": 55000, "val": 5000, "test": 10000}

    # ------------------------------------------------------------------ finding and reading the files
    def _torchvision(self) -> type:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)

    def _read_torchvision(self, root: Path, download: bool = False) -> Arrays:
        cls = self._torchvision()
        try:
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=False)
        except Exception as exc:  # torchvision raises RuntimeError/TypeError/ValueError/AssertionError/URLError
            verb = "download" if download else "read"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{self.name}: cannot {verb} {root / self.torchvision_class} ({first}); {self.how_to_get()}") from None
        return train.data.numpy(), train.targets.numpy(), test.data.numpy(), test.targets.numpy()

    def _candidate_folders(self, root: Path) -> list[Path]:
        return [root, *(root / a for a in self.aliases), root / self.torchvision_class / "raw"]

    def locate(self) -> tuple[str, Path, list[Path]]:
        """("torchvision" | "idx", folder, searched roots); ("", ..) when nothing is found."""
        roots = search_roots(self.root, self.system_dirs)
        for r in roots:
            raw = r / self.torchvision_class / "raw"
            if all((raw / stem).is_file() for stem in FILES.values()):
                return "torchvision", r, roots
            for folder in self._candidate_folders(r):
                if _find_idx_folder(folder) is not None:
                    return "idx", folder, roots
        return "", Path(), roots

    def how_to_get(self, roots: list[Path] | None = None) -> str:
        """The ways to obtain the files, as one line."""
        ways = []
        if self.system_package:
            ways.append(f"`apt-get install {self.system_package}` (installs {self.system_dirs[0]})")
        ways.append(f"{DOWNLOAD_ENV}=1 to let torchvision download them")
        ways.append(
            f"--data-root DIR or {DATA_ENV}=DIR where DIR holds {FILES['train_images']}[.gz] and the other three IDX files "
            f"(or torchvision's DIR/{self.torchvision_class}/raw)"
        )
        looked = f"looked in {describe(roots)}; " if roots else ""
        return f"{looked}get them by " + ", or ".join(ways)

    def read_arrays(self) -> tuple[Arrays, str]:
        """The official train and test arrays and a description of where they came from."""
        kind, folder, roots = self.locate()
        if kind == "torchvision":
            return check_arrays(self.name, self._read_torchvision(folder), str(folder)), f"torchvision:{folder}"
        if kind == "idx":
            files = _find_idx_folder(folder)
            assert files is not None
            arrays = tuple(read_idx(files[k]) for k in FILES)
            return check_arrays(self.name, arrays, str(folder)), f"idx:{folder}"  # type: ignore[arg-type]
        if download_allowed():
            target = download_root(self.root)
            return check_arrays(self.name, self._read_torchvision(target, download=True), str(target)), f"download:{target}"
        raise DataError(f"{self.name} files not found: {self.how_to_get(roots)}")

    # ------------------------------------------------------------------ splits
    def val_size(self, n_train: int) -> int:
        return validation_size(n_train)

    def to_levels(self, images: np.ndarray, train: bool) -> np.ndarray:
        """Official uint8 images (N, 28, 28) -> this data set's levels (N, 1, 28, 28)."""
        return images[:, None]

    @property
    def split_version(self) -> str:
        return f"{SPLIT_VERSION}:seed{SPLIT_SEED}"

    def load(self) -> DataSplits:
        (x_tr, y_tr, x_te, y_te), _source = self.read_arrays()
        idx = split_indices(len(x_tr), {"val": self.val_size(len(x_tr))}, SPLIT_SEED)
        x_tr, x_te = self.to_levels(x_tr, True), self.to_levels(x_te, False)
        images = {k: x_tr[v] for k, v in idx.items()} | {"test": x_te}
        labels = {k: y_tr[v] for k, v in idx.items()} | {"test": y_te}
        sizes = "/".join(f"{k}{len(images[k])}" for k in ("train", "val", "test"))
        return make_splits(self.spec, images, labels, split_id=f"{self.name}-{self.split_version}:{sizes}", num_classes=10)


class MNIST(IdxImageDataset):
    """LeCun et al. (1998) handwritten digits, 28x28, 256 grey levels: train 55 000 / val 5 000 / test 10 000."""

    name = "mnist"
    description = "MNIST digits 28x28 grey, K=256, 10 classes (files via --data-root / $GENBENCH_DATA / GENBENCH_DOWNLOAD=1)"
    torchvision_class = "MNIST"
    aliases = ("mnist", "MNIST")


class FashionMNIST(IdxImageDataset):
    """Xiao et al. (2017) Zalando articles, 28x28, 256 grey levels: train 55 000 / val 5 000 / test 10 000."""

    name = "fashion-mnist"
    description = "Fashion-MNIST 28x28 grey, K=256, 10 classes (Debian dataset-fashion-mnist, --data-root, or download)"
    torchvision_class = "FashionMNIST"
    aliases = ("fashion-mnist", "fashion_mnist", "FashionMNIST")
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    system_package = "dataset-fashion-mnist"


def binarize(images: np.ndarray, seed: int) -> np.ndarray:
    """One fixed stochastic binarisation: pixel = 1 with probability intensity/255 (Salakhutdinov & Murray 2008).

    Uniforms come from ``numpy.random.Generator(PCG64(seed))`` in image order, 1000
    images (784 000 float64 draws) at a time, so the result depends only on the seed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    out = np.empty(images.shape, dtype=np.uint8)
    flat_in, flat_out = images.reshape(len(images), -1), out.reshape(len(images), -1)
    for start in range(0, len(images), 1000):
        chunk = flat_in[start : start + 1000]
        flat_out[start : start + 1000] = rng.random(chunk.shape) < chunk / 255.0
    return out


class BinarizedMNIST(MNIST):
    """MNIST with ONE fixed stochastic binarisation (K=2), the likelihood benchmark of the literature.

    Convention: each pixel is drawn once as Bernoulli(intensity/255) (Salakhutdinov &
    Murray 2008, "On the quantitative analysis of deep belief networks"; the fixed
    binarised files of Larochelle & Murray 2011 used by e.g. PixelCNN: 81.30 nats,
    van den Oord et al. 2016 Table 4) and kept fixed; split sizes as theirs, train
    50 000 / val 10 000 / test 10 000.  The draw itself is genbench's (seeded), not
    the Larochelle files, so numbers compare with those papers up to the draw.  Some
    papers (e.g. IWAE, Burda et al. 2016, ~85-87 nats) resample the binarisation every
    epoch ("dynamic"), which this data set is not; its fixed test set is what makes
    runs comparable.  Likelihoods in nats per image: nats = bits/dim * 784 * ln 2.
    """

    name = "binarized-mnist"
    description = "MNIST binarised once, Bernoulli(x/255) with a fixed seed (Salakhutdinov & Murray 2008), K=2; NLL in nats"
    spec = DataSpec(channels=1, height=28, width=28, levels=2)
    split_sizes = {"train": 50000, "val": 10000, "test": 10000}

    def val_size(self, n_train: int) -> int:
        return max(1, min(10000, n_train // 6))

    def to_levels(self, images: np.ndarray, train: bool) -> np.ndarray:
        return binarize(images, BINARIZE_SEED + (0 if train else 1))[:, None]

    @property
    def split_version(self) -> str:
        return f"{SPLIT_VERSION}:seed{SPLIT_SEED}:bernoulli-{BINARIZE_VERSION}-seed{BINARIZE_SEED}"
