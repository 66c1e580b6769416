"""Samples made elsewhere (``genbench eval SAMPLES``), read and checked against the data set they are scored on.

SAMPLES is a folder of image files, an ``.npz`` file (read by ``genbench.data.files``: the formats its docstring
lists) or a data set's split ``NAME:SPLIT`` (``genbench.data.references``).  They become the data set's K integer
levels exactly as a trained model's samples do:

- floats in [0, 1] are quantised once with ``DataSpec.quantise`` (the runner's one quantisation: level
  ``round(x (K-1))``); NaN or infinite values, or floats outside [0, 1], are refused;
- integer levels are taken as they are: an ``.npz`` with a ``levels`` entry must say the data set's K; without
  one its values are read as the data set's levels 0..K-1;
- image files are 8-bit pixels; for a data set of K != 256 levels each pixel must be one of the K values
  ``round(k * 255 / (K-1))`` that ``genbench export`` writes (so level k comes back as k).

Anything that does not fit the data set -- another height/width, channel count or number of levels -- is a
one-line DataError saying what the data set expects.  Nothing is converted silently: ``resize=True`` converts
explicitly (bilinear with antialiasing to the data's size; grey -> RGB by repeating, RGB -> grey by ITU-R 601-2
luma as PIL does; values to [0, 1], then the one quantisation) and ``Samples.conversion`` records what was done.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genbench.data.base import DataError
from genbench.data.files import folder_shape, image_files, image_key, read_image_files, read_npz, to_nchw
from genbench.io import file_sha256
from genbench.model import DataSpec

if TYPE_CHECKING:
    from genbench.plugins import Registry

MIN_SAMPLES = 2  # FID needs a covariance: at least two images
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, PIL's "L" conversion


@dataclass
class Samples:
    """Samples as the data set's integer levels, with where they came from and what was done to them."""

    levels: Tensor  # (n, C, H, W), the data set's K levels
    source: str  # the path (an .npz's array key appended), or NAME:SPLIT
    sha256: str  # identity of the input: the .npz file's sha256, a folder's content hash, or the split's data hash
    stored_as: str  # "floats in [0, 1]", "integer levels (K=17)", "8-bit pixels"
    input_shape: tuple[int, int, int]
    conversion: str = ""  # what resize=True did ("" when nothing)

    @property
    def n(self) -> int:
        return len(self.levels)

    @property
    def levels_sha256(self) -> str:
        """sha256 of the levels that were scored (after any conversion)."""
        return hashlib.sha256(self.levels.contiguous().numpy().tobytes()).hexdigest()


def _folder_hash(folder: Path, files: list[Path]) -> str:
    """The content hash ``genbench fid`` gives a folder (relative names and each file's sha256)."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _read_raw(text: str, registry: Registry | None, data_root: str | None) -> tuple[np.ndarray, int | None, str, str, str]:
    """(images N x C x H x W, their number of levels or None for floats, source, sha256, how stored)."""
    from genbench.data.references import load_split, parse_reference

    ref = parse_reference(text, registry) if registry is not None else None
    if ref is not None:
        data, levels = load_split(ref, registry, data_root)
        return levels.numpy(), data.spec.levels, str(ref), f"{data.data_hash}:{ref.split}", \
            f"integer levels (K={data.spec.levels})"
    path = Path(text).expanduser()
    if path.is_dir():
        files = image_files(path)  # an empty folder: one line
        shape = folder_shape(files)  # images of several sizes: one line
        return read_image_files(files, shape[0]), 256, str(path), _folder_hash(path, files), "8-bit pixels"
    if path.is_file() and path.suffix == ".npz":
        arrays = read_npz(path)
        key = image_key(arrays, path.name)  # no usable array: one line
        x = to_nchw(arrays[key], f"{path.name}:{key}")
        levels = None
        if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
            levels = int(arrays["levels"]) if "levels" in arrays else 0  # 0: the data set's, checked by the caller
        elif not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{path.name}:{key} has dtype {x.dtype}; store integer levels or floats in [0, 1]")
        how = "floats in [0, 1]" if levels is None else "integer levels" + (f" (K={levels})" if levels else "")
        return x, levels, f"{path}:{key}", file_sha256(path), how
    raise DataError(f"{text} is neither a folder of images, an .npz file nor a data set's split NAME:SPLIT")


def _to_unit(x: np.ndarray, levels: int | None) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.to(torch.float32) if levels is None else t.to(torch.float32) / (levels - 1)


def _convert(x: Tensor, spec: DataSpec) -> tuple[Tensor, list[str]]:
    """Floats in [0, 1] (N, C, H, W) -> the data's channels and size, saying what was done."""
    done = []
    c = x.shape[1]
    if c != spec.channels:
        if c == 1:
            x = x.repeat(1, spec.channels, 1, 1)
            done.append(f"grey to {spec.channels} channels (repeated)")
        elif c == 3 and spec.channels == 1:
            x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
            done.append("RGB to grey (ITU-R 601-2 luma)")
        else:
            raise DataError(f"cannot convert {c} channels to {spec.channels}; convert the samples yourself")
    if tuple(x.shape[2:]) != (spec.height, spec.width):
        done.append(f"{x.shape[2]}x{x.shape[3]} to {spec.height}x{spec.width} (bilinear, antialias)")
        x = F.interpolate(x, size=(spec.height, spec.width), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0.0, 1.0), done


def read_samples(text: str, spec: DataSpec, dataset: str, *, resize: bool = False, registry: Registry | None = None,
                 data_root: str | None = None) -> Samples:
    """SAMPLES as ``spec``'s levels (rules: the module docstring); every refusal is one DataError line."""
    x, levels, source, sha, how = _read_raw(text, registry, data_root)
    n = len(x)
    if n < MIN_SAMPLES:
        raise DataError(f"{source} holds {n} image{'s' if n != 1 else ''}; scoring needs at least {MIN_SAMPLES} "
                        "(FID's covariance), ideally as many as the data set's test split")
    shape = tuple(int(s) for s in x.shape[1:])
    expects = (f"{dataset} expects {spec.channels}x{spec.height}x{spec.width} images (C x H x W) with "
               f"{spec.levels} levels")
    if levels is None:
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).reshape(n, -1).any(1).sum())
            raise DataError(f"{source} holds NaN or infinite values in {bad} of {n} images; fix or drop those samples")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise DataError(f"{source} holds floats in {lo:.3g}..{hi:.3g}; floats must be in [0, 1] "
                            "(map [-1, 1] outputs with (x + 1) / 2)")
    else:
        x = x.astype(np.int64)
        lo, hi = int(x.min()), int(x.max())
        if levels == 0:  # integer .npz without a levels entry: the data set's levels
            if lo < 0 or hi >= spec.levels:
                raise DataError(f"{source} has integer values {lo}..{hi} but {dataset} has {spec.levels} levels "
                                f"(0..{spec.levels - 1}); add a 'levels' entry (256 for 8-bit pixels) or store floats in [0, 1]")
            levels = spec.levels
        elif lo < 0 or hi >= levels:
            raise DataError(f"{source} has values {lo}..{hi} outside its levels 0..{levels - 1}")
    problems = []
    if shape[0] != spec.channels:
        problems.append(f"{shape[0]} channel{'s' if shape[0] != 1 else ''}")
    if shape[1:] != (spec.height, spec.width):
        problems.append(f"size {shape[1]}x{shape[2]}")
    dtype = spec.quantise(torch.zeros(1)).dtype  # the dtype the runner stores levels in
    off_levels = False
    if levels is not None and levels != spec.levels:
        on_grid = _on_level_grid(x, levels, spec.levels)
        if on_grid is None:
            off_levels = True
            problems.append(f"{levels} levels" if levels != 256 else f"8-bit pixels that are not {spec.levels} levels "
                            f"(round(k * 255 / {spec.levels - 1}))")
        else:
            x, levels = on_grid, spec.levels  # exactly the data's levels, stored at another bit depth
    if problems and not resize:
        raise DataError(f"{source} has {', '.join(problems)}; {expects}; convert them, or pass --resize to convert "
                        "explicitly (recorded in the rows)")
    if not problems:
        t = torch.from_numpy(np.ascontiguousarray(x))
        out = t.to(dtype) if levels is not None else spec.quantise(t)  # floats: the runner's one quantisation
        return Samples(out, source, sha, how, shape)
    unit, done = _convert(_to_unit(x, levels), spec)
    if off_levels:
        done.append(f"levels {levels} to {spec.levels} (rounded)")
    return Samples(spec.quantise(unit), source, sha, how, shape, conversion="; ".join(done))


def _on_level_grid(x: np.ndarray, levels: int, k: int) -> np.ndarray | None:
    """Integer values of ``levels`` levels that are each exactly one of ``k`` levels' values (as
    ``round(j * (levels-1) / (k-1))``), mapped to j; None when any is off that grid."""
    if levels < k:
        return None
    grid = np.round(np.arange(k) * (levels - 1) / (k - 1)).astype(np.int64)
    j = np.searchsorted(grid, x)
    j = np.clip(j, 0, k - 1)
    if not np.array_equal(grid[j], x):
        return None
    return j
