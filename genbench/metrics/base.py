"""Metric plugins and the measurements they produce (one tidy row each)."""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from genbench.metrics.display import MetricDisplay

if TYPE_CHECKING:
    from genbench.data.base import DataSplits
    from genbench.metrics.extractors import FeatureExtractor
    from genbench.metrics.features import FeatureSet
    from genbench.model import GenerativeModel
    from genbench.plugins import Registry

EXTRACTORS_ENV = "GENBENCH_EXTRACTORS"
DEFAULT_EXTRACTORS = "classifier"


def default_extractor_names() -> list[str]:
    """Extractors the sample metrics use: ``GENBENCH_EXTRACTORS`` (comma-separated), else "classifier".

    Inception is opt-in (``GENBENCH_EXTRACTORS=classifier,inception``): on 8x8 digits it is slow and meaningless.
    """
    text = os.environ.get(EXTRACTORS_ENV, "") or DEFAULT_EXTRACTORS
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class Measurement:
    """One measured number with everything needed to read it.

    ``kind`` qualifies likelihoods (exact, ELBO, IWAE-k, VLB); ``sampler`` names the
    sampler setting the samples came from and ``sampling_seed`` which of its
    independent draws (0 unless the config asks for ``sampling_seeds > 1``);
    ``reference`` the real split compared against; ``details`` holds anything else
    (batch size, k, subset size...).
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
    sampling_seed: int = 0


@dataclass
class SampleSet:
    """Samples from one sampler setting and sampling seed, as quantised levels, with how they were made.

    ``peak_memory_mib`` is the CUDA memory peak while drawing them (None off CUDA); ``compiled``: whether the
    network calls ran a compiled copy (``compile_sampler``); ``compile_seconds``: that copy's compile time, paid once
    for all the cell's sampler settings and left out of ``seconds`` (the speed metric reports it as its own row).
    """

    label: str
    steps: int | None
    levels: Tensor  # (n, C, H, W) integer levels
    nfe: int
    seconds: float
    batch_size: int
    sampling_seed: int = 0
    peak_memory_mib: float | None = None
    compiled: bool = False
    compile_seconds: float | None = None

    @property
    def n(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class ComparedSet:
    """One set of images a sample metric compares with the test split: a sampler's draw, or the real-data floor."""

    sampler: str
    suffix: str  # appended to the metric's name: "" for samples, "_floor" for the real-data floor
    features: FeatureSet
    sampling_seed: int = 0


@dataclass
class EvalContext:
    """What a metric may look at: the trained model, the data, the samples, a cache, and the registry
    the run was given (feature extractors are looked up there)."""

    model: GenerativeModel
    data: DataSplits
    samples: list[SampleSet]
    device: torch.device
    cache_dir: Path
    seed: int
    registry: Registry
    train_seconds: float = 0.0
    train_steps: int = 0
    extractor_names: list[str] = field(default_factory=default_extractor_names)
    _extractors: dict[str, FeatureExtractor] = field(default_factory=dict)
    _features: dict[tuple[str, str], FeatureSet] = field(default_factory=dict)
    _memo: dict[tuple, Any] = field(default_factory=dict)

    def memo(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()`` once per cell and ``key`` (e.g. a reference's bootstrap replicates, shared by every
        compared set and by the metrics that use them)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def extractor(self, name: str = "classifier") -> FeatureExtractor:
        """The named feature extractor for this data set (built or loaded from the cache once)."""
        if name not in self._extractors:
            import time

            from genbench.metrics.extractors import get_extractor
            from genbench.progress import current

            current().line(f"feature extractor {name}: loading (fitted to the data set on first use, then cached)")
            t0 = time.perf_counter()
            self._extractors[name] = get_extractor(name, self.data, self.cache_dir, self.device, self.registry)
            if time.perf_counter() - t0 >= 5.0:
                current().line(f"feature extractor {name} ready ({time.perf_counter() - t0:.1f}s)")
        return self._extractors[name]

    def reference_features(self, ext: FeatureExtractor, split: str = "test") -> FeatureSet:
        """Features and statistics of a real split, cached on disk by data hash and extractor weights."""
        key = (ext.name, f"split:{split}")
        if key not in self._features:
            from genbench.metrics.features import cached_features, tensor_batches

            x = self.data.unit(split)
            self._features[key] = cached_features(
                ext, f"{self.data.data_hash}:{split}", lambda: tensor_batches(x, 4 * ext.batch_size), self.cache_dir,
                label=f"{split} ({self.data.split_id})",
            )
        return self._features[key]

    def floor_features(self, ext: FeatureExtractor, n: int) -> FeatureSet:
        """Features of ``n`` real images outside the test split (seeded choice): the real-data floor's "samples"."""
        key = (ext.name, f"floor:{n}")
        if key not in self._features:
            from genbench.metrics.features import cached_features, tensor_batches

            pool = self.data.reference_pool()
            perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(self.seed))[:n]
            x = self.data.spec.to_unit(pool[perm])
            self._features[key] = cached_features(
                ext, f"{self.data.data_hash}:floor:seed{self.seed}:n{n}", lambda: tensor_batches(x, 4 * ext.batch_size),
                self.cache_dir, label="real images outside the test split",
            )
        return self._features[key]

    def sample_features(self, ext: FeatureExtractor, samples: SampleSet) -> FeatureSet:
        """Features of one sampler's samples (kept in memory for this cell; FID, KID and PRDC share them)."""
        key = (ext.name, f"samples:{samples.label}:seed{samples.sampling_seed}")
        if key not in self._features:
            from genbench.metrics.features import stream_features, tensor_batches

            x = self.data.spec.to_unit(samples.levels)
            self._features[key] = stream_features(ext, tensor_batches(x, 4 * ext.batch_size), keep=True)
        return self._features[key]

    def floor_size(self) -> int:
        """n of the real-data floor: as many real images as the largest sample set, capped by what exists."""
        return min(max((s.n for s in self.samples), default=0), len(self.data.val) + len(self.data.train))

    def compared_sets(self, ext: FeatureExtractor, min_floor: int = 2) -> list[ComparedSet]:
        """What a sample metric compares with the test split: every sampler's draws, then the real-data floor
        (sampler "real data", suffix "_floor") when it has at least ``min_floor`` images."""
        sets = [ComparedSet(s.label, "", self.sample_features(ext, s), s.sampling_seed) for s in self.samples]
        n_floor = self.floor_size()
        if n_floor >= min_floor:
            sets.append(ComparedSet("real data", "_floor", self.floor_features(ext, n_floor)))
        return sets

    def row_fields(self, ext: FeatureExtractor, unit: str, higher_is_better: bool) -> dict[str, Any]:
        """Measurement fields shared by every row a feature metric writes against the test split."""
        return dict(unit=unit, higher_is_better=higher_is_better, extractor=ext.name, extractor_sha256=ext.sha256,
                    reference=f"test ({self.data.split_id})")


class Metric(abc.ABC):
    """A metric plugin: ``compute`` turns an evaluation context into measurements.

    ``needs`` says what the metric requires: "samples" (any model, and samples made elsewhere:
    ``genbench eval``), "model" (the model object itself, e.g. to time a draw or count parameters; not for
    ``genbench eval``) or "likelihood" (only models that declare one; others get "—" in the report, never 0).
    ``display`` says how the report shows each metric name the metric writes (title,
    table, scale, direction; see :mod:`genbench.metrics.display`); a name without one is
    placed by the report from its rows.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    needs: ClassVar[str] = "samples"
    higher_is_better: ClassVar[bool | None] = None
    display: ClassVar[dict[str, MetricDisplay]] = {}

    def applies_to(self, model: GenerativeModel) -> bool:
        return self.needs != "likelihood" or model.likelihood is not None

    @abc.abstractmethod
    def compute(self, ctx: EvalContext) -> list[Measurement]:
        """Measure; raise with a one-line message if something is wrong."""
