"""Metrics: FID, KID, precision/recall/density/coverage, bits/dim, sample classes, memorisation, speed and training cost."""
from genbench.metrics.base import EvalContext, Measurement, Metric, SampleSet

__all__ = ["EvalContext", "Measurement", "Metric", "SampleSet"]
