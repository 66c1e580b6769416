"""A user's own images, an ``.npz`` file or a folder of image files: the one reader behind both
``genbench run --dataset PATH`` (a training data set) and ``genbench fid A B`` (image sets to compare).

Accepted formats (the same for both uses):

- a folder of image files (PNG, JPEG, BMP, WebP, TIFF), searched recursively and read in sorted path
  order, all of one size; grayscale (1 channel) when every file is grayscale (modes L, 1, I;16, I), else
  every file is read as RGB (3 channels); 8-bit pixels, K = 256 levels;
- an ``.npz`` file whose images are integer levels shaped N x H x W, N x C x H x W or N x H x W x C
  (C = 1 or 3 for a channels-last array, which is transposed), with an optional ``levels`` entry K
  (level k is shown as k/(K-1)).  The images are the arrays ``train`` and ``test`` together (a data set with its
  own test split, labels ``y_train``/``y_test``), else the first of ``samples``, ``x``, ``images``,
  ``test``, ``arr_0`` present, else the file's only array (labels ``y``).

Where the two uses differ it is by purpose, not by format: an image set that is only compared
(``genbench fid``) may also hold floats in [0, 1], and an integer array without ``levels`` is read as
8-bit pixels (K = 256); a training data set needs integer levels (a likelihood is over them), and without
``levels`` its K is the largest value + 1, the smallest alphabet that holds the data; images to compare
need 1 or 3 channels (what the feature extractors take), a training data set may have any number.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from genbench.data.base import DataError, Dataset, DataSplits, as_images, make_splits, split_indices, validation_size
from genbench.model import DataSpec

if TYPE_CHECKING:
    from genbench.plugins import Registry

SPLIT_SEED = 1234
SPLIT_VERSION = "v1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_KEYS = ("samples", "x", "images", "test", "arr_0")
LABEL_KEYS = ("y", "y_train", "y_test")
GREY_MODES = ("L", "1", "I;16", "I")


# ---------------------------------------------------------------------- the reader
def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (no pickles); one-line DataErrors."""
    if not path.is_file():
        raise DataError(f"npz file {path} not found; pass an existing .npz path")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}
    except Exception as exc:
        raise DataError(f"cannot read {path} as .npz ({type(exc).__name__}); save it with numpy.savez") from None


def image_key(arrays: dict[str, np.ndarray], name: str) -> str:
    """Which array of an ``.npz`` holds the images (see the module docstring)."""
    key = next((k for k in IMAGE_KEYS if k in arrays), None)
    if key is None:
        candidates = [k for k in arrays if k != "levels" and k not in LABEL_KEYS]
        if len(candidates) != 1:
            raise DataError(f"{name} has arrays {sorted(arrays)}; it needs 'train' and 'test', or one image array "
                            f"named one of {', '.join(IMAGE_KEYS)}")
        key = candidates[0]
    return key


def to_nchw(array: np.ndarray, what: str) -> np.ndarray:
    """N x H x W, N x C x H x W or N x H x W x C (C = 1 or 3) -> N x C x H x W."""
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise DataError(f"{what} has shape {array.shape}; expected N x H x W, N x C x H x W or N x H x W x C")
    if array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)  # channels-last (e.g. guided-diffusion reference batches)
    if array.shape[1] not in (1, 3):
        raise DataError(f"{what} has {array.shape[1]} channels; need 1 (grayscale) or 3 (RGB)")
    return np.ascontiguousarray(array)


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively, sorted), or a one-line DataError."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found; pass an existing folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}); put images in it")
    return files


def folder_shape(files: list[Path]) -> tuple[int, int, int]:
    """(C, H, W) of a folder's images from their headers (no decoding); every image must be one size."""
    first: tuple[tuple[int, int], Path] | None = None
    grey = True
    for f in files:
        with _open_image(f) as img:
            if first is None:
                first = (img.size, f)
            elif img.size != first[0]:
                raise DataError(f"{f.name} is {img.size[0]}x{img.size[1]} but {first[1].name} is "
                                f"{first[0][0]}x{first[0][1]} (W x H); resize all images to one size")
            grey &= img.mode in GREY_MODES
    assert first is not None
    (w, h), _ = first
    return (1 if grey else 3, h, w)


def _open_image(path: Path):  # noqa: ANN202  (a PIL image)
    from PIL import Image

    try:
        return Image.open(path)
    except Exception as exc:
        raise DataError(f"cannot read image {path} ({type(exc).__name__}); re-save or remove the file") from None


def read_image_files(files: list[Path], channels: int) -> np.ndarray:
    """Decode image files to uint8 levels N x C x H x W (grayscale or RGB as ``channels`` says); a file that
    does not decode (truncated, not an image) is a one-line DataError naming it."""
    arrays = []
    for f in files:
        with _open_image(f) as img:
            try:
                arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
            except Exception as exc:
                raise DataError(f"cannot decode image {f} ({type(exc).__name__}: {str(exc).splitlines()[0][:80]}); "
                                "re-save or remove the file") from None
        arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    return np.stack(arrays)


# ---------------------------------------------------------------------- training data sets
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
    """A user's ``.npz`` file as a training data set (formats: the module docstring)."""

    name = "npz"
    description = "a user's .npz file: train/test (or one image array) of integer levels, optional levels and labels"

    def load(self) -> DataSplits:
        path = self.root
        if path is None:
            raise DataError("no .npz path given; pass an existing .npz path to --dataset")
        arrays = read_npz(path)
        if {"train", "test"} <= set(arrays):
            train = as_images(arrays["train"], f"{path.name}:train")
            test = as_images(arrays["test"], f"{path.name}:test")
            if train.shape[1:] != test.shape[1:]:
                raise DataError(f"{path.name}: train images are {train.shape[1:]} but test images are {test.shape[1:]}; use one size")
            y_train, y_test = arrays.get("y_train"), arrays.get("y_test")
        else:
            key = image_key(arrays, path.name)
            train, test = as_images(arrays[key], f"{path.name}:{key}"), None
            y_train, y_test = arrays.get("y"), None
        top = int(max(train.max(), test.max() if test is not None else 0))
        levels = int(arrays["levels"]) if "levels" in arrays else top + 1
        if "levels" in arrays and levels < 2:
            raise DataError(f"{path.name} says levels={levels}; a data set needs at least 2 levels (0..K-1); "
                            "store the number of levels K >= 2")
        if top >= levels:
            raise DataError(f"{path.name} has value {top} but levels={levels}; values must be 0..levels-1")
        if test is not None and (y_train is None) != (y_test is None):
            raise DataError(f"{path.name} has y_train but no y_test; give labels for both splits or neither")
        return split_user_images(path.stem, train, y_train, max(levels, 2), test, y_test)


class ImageFolderDataset(Dataset):
    """A folder of image files of one size as a training data set, 256 levels (formats: the module docstring)."""

    name = "folder"
    description = "a folder of images of one size (PNG, JPEG, ...; grayscale or RGB), 256 levels"

    def load(self) -> DataSplits:
        if self.root is None:
            raise DataError("no image folder given; pass an existing folder of images to --dataset")
        files = image_files(self.root)
        channels, _, _ = folder_shape(files)
        return split_user_images(self.root.name, read_image_files(files, channels), None, 256)


def dataset_from_path(text: str) -> Dataset | None:
    """A path given to ``--dataset``: an existing ``.npz`` file or folder (None if it is not a path)."""
    path = Path(text).expanduser()
    if text.endswith(".npz") or path.is_file():
        return NpzDataset(path)
    if path.is_dir():
        return ImageFolderDataset(path)
    return None


def resolve_dataset(name_or_path: str, registry: Registry, data_root: str | None = None) -> Dataset:
    """A data set registered in ``registry`` by name, or a user's ``.npz`` file / image folder by path."""
    if name_or_path in registry.datasets:
        return registry.datasets.get(name_or_path)(root=data_root)
    from_path = dataset_from_path(name_or_path)
    if from_path is not None:
        return from_path
    registry.datasets.get(name_or_path)  # raises UnknownNameError with did-you-mean
    raise AssertionError


# ---------------------------------------------------------------------- image sets to compare
@dataclass
class ImageSet:
    """Images to compare: where from, a content hash, count, (C, H, W), and a batch reader giving [0, 1] floats."""

    path: str
    content: str
    n: int
    shape: tuple[int, int, int]
    batches: Callable[[int], Iterator[Tensor]]


def _folder_set(folder: Path) -> ImageSet:
    files = image_files(folder)
    shape = folder_shape(files)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(files), batch_size):
            yield torch.from_numpy(read_image_files(files[i : i + batch_size], shape[0])).float() / 255.0

    return ImageSet(str(folder), f"folder:{h.hexdigest()}", len(files), shape, batches)


def _npz_set(path: Path) -> ImageSet:
    arrays = read_npz(path)
    key = image_key(arrays, path.name)
    levels = int(arrays["levels"]) if "levels" in arrays else None
    x = to_nchw(arrays[key], f"{path.name}:{key}")
    if np.issubdtype(x.dtype, np.integer):
        top = levels if levels is not None else 256
        if x.min() < 0 or x.max() >= top:
            raise DataError(f"{path.name}:{key} has values {x.min()}..{x.max()} outside 0..{top - 1}; "
                            "add a 'levels' entry or store uint8")
        scale = 1.0 / (top - 1)
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).reshape(len(x), -1).any(1).sum())
            raise DataError(f"{path.name}:{key} holds NaN or infinite values in {bad} of {len(x)} images; "
                            "remove or fix those images")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{path.name}:{key} holds floats in {x.min():.3g}..{x.max():.3g}; floats must be in [0, 1]")
        scale = 1.0
    else:
        raise DataError(f"{path.name}:{key} has dtype {x.dtype}; store uint8 levels or floats in [0, 1]")
    h = hashlib.sha256(f"{x.dtype}:{x.shape}:{levels}".encode())
    h.update(x.tobytes())
    t = torch.from_numpy(x)

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(t), batch_size):
            yield t[i : i + batch_size].to(torch.float32) * scale

    return ImageSet(f"{path}:{key}", f"npz:{h.hexdigest()}", len(x), tuple(x.shape[1:]), batches)


def load_image_set(text: str) -> ImageSet:
    """A folder of images or an ``.npz`` file to compare (formats: the module docstring)."""
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder_set(path)
    if path.is_file() and path.suffix == ".npz":
        return _npz_set(path)
    raise DataError(f"{text} is neither a folder of images nor an .npz file")
