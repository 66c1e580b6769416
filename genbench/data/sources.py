"""Where the files of a downloadable data set are looked for, and whether genbench may download them.

Search order (first folder holding the files wins):
  1. ``--data-root`` (the ``root`` a data set is constructed with),
  2. ``$GENBENCH_DATA`` (one folder, or several separated by ``os.pathsep``),
  3. folders a system package installs (e.g. Debian's ``dataset-fashion-mnist``:
     /usr/share/datasets/fashion-mnist),
  4. the default download folder ``$XDG_CACHE_HOME/genbench/data`` (~/.cache/genbench/data).

Nothing is downloaded unless ``GENBENCH_DOWNLOAD=1`` is set; then torchvision downloads
into the first of ``--data-root``, ``$GENBENCH_DATA``, the default folder.  Tests never set it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

DATA_ENV = "GENBENCH_DATA"
DOWNLOAD_ENV = "GENBENCH_DOWNLOAD"


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/genbench/data`` (default ``~/.cache/genbench/data``): where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genbench" / "data"


def _env_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p.strip()]


def search_roots(root: str | Path | None, system_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """The folders to look in, in order, without duplicates (see the module docstring)."""
    ordered = ([Path(root).expanduser()] if root is not None else []) + _env_dirs()
    ordered += [Path(p) for p in system_dirs] + [default_data_dir()]
    out: list[Path] = []
    for p in ordered:
        if p not in out:
            out.append(p)
    return out


def download_allowed() -> bool:
    """True when the user set ``GENBENCH_DOWNLOAD`` to 1/true/yes."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def download_root(root: str | Path | None) -> Path:
    """Where a permitted download goes: ``--data-root``, else the first ``$GENBENCH_DATA`` folder, else the default."""
    if root is not None:
        return Path(root).expanduser()
    env = _env_dirs()
    return env[0] if env else default_data_dir()


def describe(roots: list[Path]) -> str:
    """The searched folders, for one-line error messages."""
    return ", ".join(str(p) for p in roots)
