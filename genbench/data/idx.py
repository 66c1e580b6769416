"""IDX files (LeCun's MNIST format; Fashion-MNIST uses it too), raw or gzip-compressed.

torchvision reads only the uncompressed files in its own ``<root>/<Class>/raw`` layout;
this reader also takes the ``.gz`` files as distributed (and as Debian's
``dataset-fashion-mnist`` installs them) without unpacking them to disk.

Format (http://yann.lecun.com/exdb/mnist/): a big-endian header -- two zero bytes, a
type byte (0x08 = unsigned byte), the number of dimensions -- then one big-endian
uint32 per dimension, then the data, row-major.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from genbench.data.base import DataError

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed in memory); DataError when malformed."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path} ({exc}); delete it and fetch the file again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or not 1 <= raw[3] <= 4:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}); delete it and fetch the file again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or padded ({len(raw)} bytes, header says {expected}); fetch the file again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))  # writable, native order


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip when ``path`` ends in ``.gz``); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(blob, mtime=0) if path.suffix == ".gz" else blob)
