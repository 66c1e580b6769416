"""Named references to real images: ``NAME:SPLIT``, accepted wherever a path to real images is.

``digits:test``, ``fashion-mnist:train``, ``cifar10:val``, or a user's data set by path, ``data.npz:test`` or
``my-images/:val`` (a path is split the way ``genbench run --dataset PATH`` splits it: ``genbench.data.files``).
SPLIT is one of ``train``, ``val``, ``test``.  The one parser of that syntax, used by ``genbench fid``,
``genbench eval``, ``genbench export`` and ``genbench report --datasets``.

A text is a reference only when it ends in ``:SPLIT`` and what comes before names a registered data set or an
existing file/folder; anything else (including an existing path that happens to contain a colon) is left to
the path readers, so no path that worked before changes meaning.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from genbench.data.base import DataError, DataSplits

if TYPE_CHECKING:
    from genbench.data.files import ImageSet
    from genbench.plugins import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Reference:
    """A data set (registered name or user path) and one of its splits."""

    dataset: str
    split: str

    def __str__(self) -> str:
        return f"{self.dataset}:{self.split}"


def _names_data(text: str, registry: Registry | None) -> bool:
    if registry is not None and text in registry.datasets:
        return True
    return bool(text) and Path(text).expanduser().exists()


def parse_reference(text: str, registry: Registry | None = None) -> Reference | None:
    """``NAME:SPLIT`` -> Reference; None when ``text`` is not one (an existing path is never a reference).

    A text ending in ``:SPLIT`` whose left part is neither a registered data set nor an existing path is a
    one-line DataError (a misspelt name), raised with the registry's did-you-mean suggestion when it has one.
    """
    if Path(text).expanduser().exists() or ":" not in text:
        return None
    name, _, split = text.rpartition(":")
    if split not in SPLITS:
        if name and (registry is not None and name in registry.datasets):
            raise DataError(f"{text}: unknown split {split!r}; use one of {', '.join(f'{name}:{s}' for s in SPLITS)}")
        return None
    if _names_data(name, registry):
        return Reference(name, split)
    if registry is not None and "/" not in name and not name.endswith(".npz"):
        registry.datasets.get(name)  # UnknownNameError with did-you-mean
    raise DataError(f"{text}: {name} is neither a registered data set nor an existing .npz file or image folder")


def dataset_and_split(text: str, registry: Registry | None = None, default_split: str = "test") -> Reference:
    """``NAME`` or ``NAME:SPLIT`` (``--dataset`` of ``genbench eval``/``export``): the data set and the split."""
    ref = parse_reference(text, registry)
    return ref if ref is not None else Reference(text, default_split)


def load_split(ref: Reference, registry: Registry, data_root: str | None = None) -> tuple[DataSplits, Tensor]:
    """The data set's splits and the referenced split's integer levels (N, C, H, W)."""
    from genbench.data.files import resolve_dataset

    data = resolve_dataset(ref.dataset, registry, data_root).load()
    return data, getattr(data, ref.split)


def split_labels(data: DataSplits, split: str) -> Tensor | None:
    return getattr(data, f"{split}_labels")


def reference_image_set(ref: Reference, registry: Registry, data_root: str | None = None) -> ImageSet:
    """A split as an image set to compare (``genbench fid``): values k/(K-1), identified by the data's hash.

    Its content key is the one the runner caches that split's features under, so ``genbench fid digits:test B``
    and a trained cell share the reference statistics.
    """
    from genbench.data.files import ImageSet

    data, levels = load_split(ref, registry, data_root)
    if len(levels) == 0:
        raise DataError(f"{ref} is empty; pick a split that holds images ({', '.join(k for k, v in data.sizes.items() if v)})")

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(levels), batch_size):
            yield data.spec.to_unit(levels[i : i + batch_size])

    return ImageSet(f"{ref} ({data.split_id})", f"{data.data_hash}:{ref.split}", len(levels), tuple(levels.shape[1:]),
                    batches)


def load_images(text: str, registry: Registry, data_root: str | None = None) -> ImageSet:
    """Real or generated images to compare: ``NAME:SPLIT``, a folder of images or an ``.npz`` file."""
    from genbench.data.files import load_image_set

    ref = parse_reference(text, registry)
    if ref is not None:
        return reference_image_set(ref, registry, data_root)
    return load_image_set(text)



def board_datasets(patterns: list[str]) -> list[str]:
    """``genbench report --datasets``: names, shell patterns, or ``NAME:test`` (a leaderboard scores against the
    test split, so another split is a one-line DataError)."""
    out = []
    for pattern in patterns:
        name, sep, split = pattern.rpartition(":")
        if sep and name and split in SPLITS:
            if split != "test":
                raise DataError(f"--datasets {pattern}: leaderboards score against the test split; give {name} "
                                f"or {name}:test")
            pattern = name
        out.append(pattern)
    return out
