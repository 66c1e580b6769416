"""The core's own metrics and feature extractors, registered through the same hooks as plugins'."""
from __future__ import annotations

from genbench.metrics.classes import SampleClasses
from genbench.metrics.extractors import builtin_extractors
from genbench.metrics.fid import FID
from genbench.metrics.kid import KID, PRDCMetric
from genbench.metrics.likelihood import BitsPerDim
from genbench.metrics.memorisation import Memorisation
from genbench.metrics.speed import SamplingSpeed, TrainingCost
from genbench.hookspecs import hookimpl


@hookimpl
def genbench_metrics() -> list[type]:
    return [FID, KID, PRDCMetric, BitsPerDim, SampleClasses, Memorisation, SamplingSpeed, TrainingCost]


@hookimpl
def genbench_extractors() -> list[type]:
    return builtin_extractors()
