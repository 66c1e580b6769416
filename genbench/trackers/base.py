"""The tracker interface: what the runner tells an experiment tracker about a cell, and the group that fans out.

A tracker plugin (``genbench_loggers`` hook) is a :class:`Tracker` subclass with a ``name``
(``genbench run --log NAME``).  For every cell the runner trains (not for a finished cell it skips) it calls,
in this order: ``start_cell(run_id, config)`` with the run's config.json content; ``log_scalars(step, values)``
at every point of the training curves (every ``CURVE_EVERY_STEPS`` steps and step 1: the losses
``train_step`` returned, validation bits/dim, sample scores during training); ``log_images(step, images)``
with the sample grids (name -> H x W x C uint8 array) once samples are drawn; ``log_rows(step, rows)`` with the
cell's tidy rows; ``end_cell(state)`` with "done" or "failed".  A tracker that raises is switched off for the
rest of the process with one warning; the cell goes on.
"""
from __future__ import annotations

import abc
import logging
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

log = logging.getLogger("genbench")


class TrackerError(RuntimeError):
    """A tracker that cannot work here (its package is missing); the message says what to install."""


class Tracker(abc.ABC):
    """One experiment tracker; constructed once per runner with the run's output folder."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: the pip requirement that provides the tracker's package (for the "install" message)
    requirement: ClassVar[str] = "genbench[trackers]"

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)

    @classmethod
    def check(cls) -> None:
        """Raise TrackerError (one line: what to install) when the tracker cannot work in this environment."""

    @abc.abstractmethod
    def start_cell(self, run_id: str, config: dict[str, Any]) -> None:
        """A cell starts; ``config`` is the content of its config.json."""

    @abc.abstractmethod
    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Curve values at training step ``step``."""

    @abc.abstractmethod
    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """Images (name -> H x W x C uint8) at training step ``step``."""

    @abc.abstractmethod
    def log_rows(self, step: int, rows: list[dict[str, Any]]) -> None:
        """The cell's final tidy rows (``genbench.results.COLUMNS``)."""

    @abc.abstractmethod
    def end_cell(self, state: str) -> None:
        """The cell ended: "done" or "failed"."""

    def close(self) -> None:
        """The runner is done with the tracker."""


def row_key(row: dict[str, Any]) -> str:
    """A row's name as a tracker metric key, ``<metric>/<kind sampler extractor [sampling_seedN]>`` (the parts a
    row has, space-separated; "all" when it has none), so that no key is a path prefix of another (MLflow's file
    store keeps keys as paths).  Characters other than letters, digits, ``_ - .`` and space become "_"."""
    clean = lambda text: re.sub(r"[^\w\-. ]", "_", str(text))  # noqa: E731
    parts = [row.get("kind"), row.get("sampler"), row.get("extractor")]
    seed = row.get("sampling_seed")
    if seed not in (None, 0, "0", ""):
        parts.append(f"sampling_seed{seed}")
    qualifier = " ".join(clean(p) for p in parts if p not in (None, "")) or "all"
    return f"{clean(row.get('metric'))}/{qualifier}"


def png_array(path: str | Path) -> np.ndarray:
    """A PNG file as an H x W x 3 uint8 array."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def sample_grids(run_dir: str | Path) -> dict[str, np.ndarray]:
    """A run folder's PNG sample grids (``samples/*.png``, one per sampler setting) and ``real_test.png``, by
    name, as arrays."""
    grids = {p.stem: png_array(p) for p in sorted(Path(run_dir, "samples").glob("*.png"))}
    if Path(run_dir, "real_test.png").is_file():
        grids["real_test"] = png_array(Path(run_dir, "real_test.png"))
    return grids


class Trackers:
    """The trackers of one runner behind the same five calls; a tracker that raises is switched off with a warning."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def call(self, method: str, *args: Any) -> None:
        """``tracker.method(*args)`` on every tracker still on."""
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # a tracker must never sink a cell
                self.trackers.remove(tracker)
                log.warning("tracker %s switched off after %s failed: %s: %s", tracker.name, method,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")


def build_trackers(names: list[str], registry: Any, out_dir: str | Path) -> Trackers:
    """The named trackers of ``registry`` (``registry.loggers``), checked and constructed for ``out_dir``."""
    trackers = []
    for name in names:
        cls = registry.loggers.get(name)  # UnknownNameError with did-you-mean
        cls.check()
        trackers.append(cls(out_dir))
    return Trackers(trackers)
