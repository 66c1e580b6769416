"""genbench: train, sample and score deep generative models through one interface."""
from __future__ import annotations

__version__ = "0.1.0"

from genbench.data.base import DataError, Dataset, DataSplits  # noqa: E402
from genbench.metrics.base import Measurement, Metric  # noqa: E402
from genbench.model import DataSpec, GenerativeModel, ModelConfig, NLLEstimate  # noqa: E402
from genbench.hookspecs import hookimpl  # noqa: E402

__all__ = [
    "DataError", "DataSpec", "Dataset", "DataSplits", "GenerativeModel", "Measurement", "Metric",
    "ModelConfig", "NLLEstimate", "__version__", "hookimpl",
]
