"""The core's own metrics, registered through the same hook as plugins' metrics."""
from __future__ import annotations

from genbench.metrics.classes import SampleClasses
from genbench.metrics.fid import FID
from genbench.metrics.likelihood import BitsPerDim
from genbench.metrics.speed import SamplingSpeed, TrainingCost
from genbench.plugins import hookimpl


@hookimpl
def genbench_metrics() -> list[type]:
    return [FID, BitsPerDim, SampleClasses, SamplingSpeed, TrainingCost]
