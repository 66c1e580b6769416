"""Data sets: fixed, versioned train / validation / test splits of discrete images."""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from genbench.model import DataSpec


class DataError(ValueError):
    """Bad or missing data; the message is one line saying what is wrong and what to do."""


@dataclass
class DataSplits:
    """Integer-level images (N, C, H, W) per split, optional class labels, and provenance.

    ``val`` is carved from the training data and is used for checkpoint selection;
    ``test`` is touched only for final scores.  ``split_id`` names the split
    procedure and its version; ``data_hash`` identifies the exact pixels.
    """

    spec: DataSpec
    train: Tensor
    val: Tensor
    test: Tensor
    split_id: str
    train_labels: Tensor | None = None
    val_labels: Tensor | None = None
    test_labels: Tensor | None = None
    num_classes: int | None = None
    entropy_bits_per_dim: float | None = None  # the true entropy, for synthetic data sets where it is known

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            arr = getattr(self, split)
            if arr.ndim != 4 or tuple(arr.shape[1:]) != self.spec.shape:
                raise DataError(f"{split} split has shape {tuple(arr.shape)}, expected (N, {', '.join(map(str, self.spec.shape))})")
            if len(arr) == 0:
                raise DataError(f"{split} split is empty; provide more images")
        self._hash: str | None = None

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    @property
    def has_labels(self) -> bool:
        return self.train_labels is not None and self.test_labels is not None

    @property
    def data_hash(self) -> str:
        """sha256 over every split's pixels (and labels): the cache key of features and classifiers."""
        if self._hash is None:
            h = hashlib.sha256()
            h.update(repr(self.spec).encode())
            for t in (self.train, self.val, self.test, self.train_labels, self.val_labels, self.test_labels):
                if t is not None:
                    h.update(t.contiguous().numpy().tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def reference_pool(self) -> Tensor:
        """Real images outside the test split (validation first, then train): the FID floor's source."""
        return torch.cat([self.val, self.train])

    def unit(self, split: str) -> Tensor:
        """A split as float values k/(K-1) in [0, 1] (the form models receive)."""
        return self.spec.to_unit(getattr(self, split))


class Dataset(abc.ABC):
    """A data-set plugin.  ``load`` returns the fixed splits; ``root`` points at files."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    spec: ClassVar[DataSpec | None] = None
    split_sizes: ClassVar[dict[str, int] | None] = None

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    @abc.abstractmethod
    def load(self) -> DataSplits:
        """Read the data (no network in tests) and return its splits."""


def split_indices(n: int, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """A fixed permutation of ``range(n)`` cut into named consecutive blocks (the rest -> "train")."""
    if sum(sizes.values()) >= n:
        raise DataError(f"cannot cut {sizes} out of {n} images; provide more images")
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name, size in sizes.items():
        out[name] = np.sort(perm[start : start + size])
        start += size
    out["train"] = np.sort(perm[start:])
    return out


def validation_size(n_train: int) -> int:
    """How many training images become the validation split: 10%, at least 1, at most 5000."""
    return int(min(5000, max(1, round(0.1 * n_train))))


def as_images(array: np.ndarray, what: str) -> np.ndarray:
    """Check an integer image array and bring it to (N, C, H, W) from N x H x W, N x C x H x W or channels-last
    N x H x W x C; one-line errors otherwise."""
    array = np.asarray(array)
    if array.size == 0:
        raise DataError(f"{what} is empty; provide at least one image")
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"{what} has dtype {array.dtype}; genbench needs integer levels (uint8), e.g. np.round(x * 255).astype(np.uint8)"
        )
    if array.min() < 0:
        raise DataError(f"{what} has negative values; levels must be 0..K-1")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise DataError(f"{what} has shape {array.shape}; expected N x H x W or N x C x H x W")
    if array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)  # channels-last N x H x W x C
    return array


def make_splits(
    spec: DataSpec,
    images: dict[str, np.ndarray],
    labels: dict[str, np.ndarray | None],
    split_id: str,
    num_classes: int | None = None,
) -> DataSplits:
    """Wrap numpy split arrays (already (N, C, H, W) integer levels) as tensors."""
    for split, arr in images.items():
        if arr.max() >= spec.levels:
            raise DataError(f"{split} has value {int(arr.max())} but the data set has {spec.levels} levels (0..{spec.levels - 1})")
    dtype = torch.uint8 if spec.levels <= 256 else torch.int32
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)  # noqa: E731
    lab = lambda a: None if a is None else torch.from_numpy(np.asarray(a).astype(np.int64))  # noqa: E731
    return DataSplits(
        spec=spec,
        train=to_t(images["train"]),
        val=to_t(images["val"]),
        test=to_t(images["test"]),
        split_id=split_id,
        train_labels=lab(labels.get("train")),
        val_labels=lab(labels.get("val")),
        test_labels=lab(labels.get("test")),
        num_classes=num_classes,
    )
