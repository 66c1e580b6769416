"""A user's own data: an ``.npz`` file or a folder of PNG images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genbench.data.base import DataError, Dataset, DataSplits, as_images, make_splits, split_indices, validation_size
from genbench.model import DataSpec

SPLIT_SEED = 1234
SPLIT_VERSION = "v1"


def split_user_images(
    name: str, images: np.ndarray, labels: np.ndarray | None, levels: int, test: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> DataSplits:
    """Cut validation (and test, when not given) from ``images`` with a fixed seed."""
    spec = DataSpec(channels=images.shape[1], height=images.shape[2], width=images.shape[3], levels=levels)
    if test is None:
        n_test = validation_size(len(images))
        cuts = {"test": n_test, "val": validation_size(len(images) - n_test)}
    else:
        cuts = {"val": validation_size(len(images))}
    if len(images) < 3:
        raise DataError(f"{name} has {len(images)} training images; need at least 3 to cut validation/test splits")
    idx = split_indices(len(images), cuts, SPLIT_SEED)
    imgs = {k: images[v] for k, v in idx.items()}
    labs = {k: (labels[v] if labels is not None else None) for k, v in idx.items()}
    if test is not None:
        imgs["test"], labs["test"] = test, test_labels
    num_classes = None
    if labels is not None:
        num_classes = int(max(labels.max(), test_labels.max() if test_labels is not None else 0)) + 1
    sizes = "/".join(f"{k}{len(v)}" for k, v in imgs.items())
    return make_splits(spec, imgs, labs, split_id=f"{name}-{SPLIT_VERSION}:seed{SPLIT_SEED}:{sizes}", num_classes=num_classes)


class NpzDataset(Dataset):
    """``.npz`` with arrays ``train`` and ``test`` (or one array ``x``), uint8 levels, N x H x W or N x C x H x W.

    Optional entries: ``levels`` (K; default max+1), labels ``y_train``/``y_test`` (or ``y``).
    """

    name = "npz"
    description = "a user's .npz file: train/test (or x) uint8 arrays, optional levels and labels"

    def load(self) -> DataSplits:
        path = self.root
        if path is None or not path.is_file():
            raise DataError(f"npz file {path} not found; pass an existing .npz path to --dataset")
        try:
            npz = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"cannot read {path} as .npz ({exc}); save it with numpy.savez") from None
        with npz:
            keys = set(npz.files)
            if {"train", "test"} <= keys:
                train = as_images(npz["train"], f"{path.name}:train")
                test = as_images(npz["test"], f"{path.name}:test")
                if train.shape[1:] != test.shape[1:]:
                    raise DataError(f"{path.name}: train images are {train.shape[1:]} but test images are {test.shape[1:]}; use one size")
                y_train = npz["y_train"] if "y_train" in keys else None
                y_test = npz["y_test"] if "y_test" in keys else None
            elif "x" in keys:
                train, test = as_images(npz["x"], f"{path.name}:x"), None
                y_train, y_test = (npz["y"] if "y" in keys else None), None
            else:
                raise DataError(f"{path.name} has arrays {sorted(keys)}; it needs 'train' and 'test', or 'x'")
            top = int(max(train.max(), test.max() if test is not None else 0))
            levels = int(npz["levels"]) if "levels" in keys else top + 1
        if top >= levels:
            raise DataError(f"{path.name} has value {top} but levels={levels}; values must be 0..levels-1")
        if test is not None and (y_train is None) != (y_test is None):
            raise DataError(f"{path.name} has y_train but no y_test; give labels for both splits or neither")
        return split_user_images(path.stem, train, y_train, max(levels, 2), test, y_test)


class ImageFolderDataset(Dataset):
    """A folder of PNG images of one size, grayscale (1 channel) or RGB (3), 256 levels."""

    name = "folder"
    description = "a folder of PNG images of one size (grayscale or RGB), 256 levels"

    def load(self) -> DataSplits:
        from PIL import Image

        folder = self.root
        if folder is None or not folder.is_dir():
            raise DataError(f"image folder {folder} not found; pass an existing folder of PNG files to --dataset")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png")
        if not files:
            raise DataError(f"{folder} holds no .png files; put PNG images in it")
        arrays, first = [], None
        for f in files:
            with Image.open(f) as img:
                mode = "L" if img.mode in ("L", "1", "I;16") else "RGB"
                arr = np.asarray(img.convert(mode))
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            if first is None:
                first = (arr.shape, f)
            elif arr.shape != first[0]:
                raise DataError(
                    f"{f.name} is {tuple(arr.shape)} (C, H, W) but {first[1].name} is {first[0]}; resize all images to one size"
                )
            arrays.append(arr)
        images = np.stack(arrays).astype(np.uint8)
        return split_user_images(folder.name, images, None, 256)


def dataset_from_path(text: str) -> Dataset | None:
    """A path given to ``--dataset``: an existing ``.npz`` file or folder (None if it is not a path)."""
    path = Path(text).expanduser()
    if text.endswith(".npz") or path.is_file():
        return NpzDataset(path)
    if path.is_dir():
        return ImageFolderDataset(path)
    return None
