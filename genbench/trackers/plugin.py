"""The built-in trackers, registered through the same hook a third-party tracker (W&B, ...) uses."""
from __future__ import annotations

from genbench.hookspecs import hookimpl


@hookimpl
def genbench_loggers() -> list[type]:
    from genbench.trackers.mlflow import MLflowTracker
    from genbench.trackers.tensorboard import TensorBoardTracker

    return [TensorBoardTracker, MLflowTracker]
