"""Metric plugins and the measurements they produce (one tidy row each)."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

if TYPE_CHECKING:
    from genbench.data.base import DataSplits
    from genbench.metrics.extractors import FeatureExtractor
    from genbench.model import GenerativeModel


@dataclass
class Measurement:
    """One measured number with everything needed to read it.

    ``kind`` qualifies likelihoods (exact, ELBO, IWAE-k, VLB); ``sampler`` names the
    sampler setting the samples came from; ``reference`` the real split compared
    against; ``details`` holds anything else (batch size, k, subset size...).
    """

    metric: str
    value: float
    unit: str
    higher_is_better: bool | None
    kind: str = ""
    n: int | None = None
    stderr: float | None = None
    sampler: str = ""
    extractor: str = ""
    extractor_sha256: str = ""
    reference: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleSet:
    """Samples from one sampler setting, as quantised levels, with how they were made."""

    label: str
    steps: int | None
    levels: Tensor  # (n, C, H, W) integer levels
    nfe: int
    seconds: float
    batch_size: int

    @property
    def n(self) -> int:
        return len(self.levels)


@dataclass
class EvalContext:
    """What a metric may look at: the trained model, the data, the samples, a cache."""

    model: GenerativeModel
    data: DataSplits
    samples: list[SampleSet]
    device: torch.device
    cache_dir: Path
    seed: int
    train_seconds: float = 0.0
    train_steps: int = 0
    _extractors: dict[str, FeatureExtractor] = field(default_factory=dict)

    def extractor(self, name: str = "classifier") -> FeatureExtractor:
        """The named feature extractor for this data set (built or loaded from the cache once)."""
        if name not in self._extractors:
            from genbench.metrics.extractors import get_extractor

            self._extractors[name] = get_extractor(name, self.data, self.cache_dir, self.device)
        return self._extractors[name]


class Metric(abc.ABC):
    """A metric plugin: ``compute`` turns an evaluation context into measurements.

    ``needs`` says what the metric requires: "samples" (any model) or "likelihood"
    (only models that declare one; others get "—" in the report, never 0).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    needs: ClassVar[str] = "samples"
    higher_is_better: ClassVar[bool | None] = None

    def applies_to(self, model: GenerativeModel) -> bool:
        return self.needs != "likelihood" or model.likelihood is not None

    @abc.abstractmethod
    def compute(self, ctx: EvalContext) -> list[Measurement]:
        """Measure; raise with a one-line message if something is wrong."""
