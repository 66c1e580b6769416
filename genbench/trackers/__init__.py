"""Experiment trackers (``genbench run --log tensorboard,mlflow``): plugins of the ``genbench_loggers`` hook.

Rooms: ``base`` (the interface every tracker implements, the group the runner calls, building them from the
registry), ``tensorboard`` and ``mlflow`` (the built-in ones; their packages are imported only when a cell
starts), ``plugin`` (their registration).
"""
from genbench.trackers.base import Tracker, TrackerError, Trackers, build_trackers, png_array, row_key, sample_grids

__all__ = ["Tracker", "TrackerError", "Trackers", "build_trackers", "png_array", "row_key", "sample_grids"]
