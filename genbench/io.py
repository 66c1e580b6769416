"""Atomic file writes (write to a temporary file in the same folder, then rename), safe checkpoint loads, and
cache files verified by a sha256 stored beside them; a damaged file is moved aside to ``*.corrupt``."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("genbench")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (survive a power loss, not only a killed process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Any:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    return torch.load(path, map_location=device, weights_only=True)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_path(path: str | Path) -> Path:
    """Where the sha256 of a verified file is kept: ``<file>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def move_aside(path: str | Path, why: str) -> Path:
    """Rename a damaged file to ``<file>.corrupt`` (its sha256 file too) and say so in a one-line warning."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    os.replace(path, target)
    side = sha256_path(path)
    if side.exists():
        os.replace(side, side.with_name(side.name + ".corrupt"))
    log.warning("%s is damaged (%s); moved it aside to %s", path, why, target.name)
    return target


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:160]


def save_verified(path: str | Path, obj: Any) -> None:
    """``atomic_torch_save`` then the file's sha256 into ``<file>.sha256`` (also written atomically)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_text(sha256_path(path), hashlib.sha256(data).hexdigest() + "\n")


def load_verified(path: str | Path, device: torch.device | str = "cpu") -> Any | None:
    """A file written by ``save_verified``, or None when there is none or it is damaged (then moved aside).

    The file's sha256 must equal the one beside it; a file without one (written before hashes were kept, or
    by a process killed between the two writes) is used only if it loads, and its hash is then recorded.
    """
    path = Path(path)
    if not path.exists():
        return None
    side = sha256_path(path)
    expected = side.read_text().strip() if side.exists() else None
    if expected is not None and file_sha256(path) != expected:
        move_aside(path, f"sha256 differs from {side.name}")
        return None
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated, garbage or not a weights-only file
        move_aside(path, _why(exc))
        return None
    if expected is None:
        atomic_write_text(side, file_sha256(path) + "\n")
    return obj


def load_checkpoint_or_none(path: str | Path, device: torch.device | str = "cpu") -> Any | None:
    """``load_checkpoint``, or None (the file moved aside to ``*.corrupt`` with a warning) when it cannot be read."""
    try:
        return load_checkpoint(path, device)
    except FileNotFoundError:
        return None
    except Exception as exc:
        move_aside(path, _why(exc))
        return None
