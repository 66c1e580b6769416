"""How a metric's rows appear in the report: a title, a table, a display scale and a direction.

Every :class:`~genbench.metrics.base.Metric` declares ``display``: for each metric name its
rows carry, a :class:`MetricDisplay`.  The report reads these declarations from the run's
registry and knows no metric by heart.  The rows the runner writes itself (validation
bits/dim, the data's entropy) are declared here, in :data:`RUNNER_DISPLAY`.

A metric's real-data floor (the same statistic with real images in place of samples,
written as ``<metric>_floor``) is declared with :func:`with_floor`; it becomes a reference
row of the quality table, never a column.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Literal

TableName = Literal["quality", "likelihood", "memorisation", "cost"]
Direction = Literal["higher", "lower"]

#: the core's own rows the report builds on (reference rows, ordering, the quality-cost plot)
BITS_PER_DIM = "bits_per_dim"
VAL_BITS_PER_DIM = "val_bits_per_dim"
DATA_ENTROPY = "data_entropy"
FID = "fid"
IMAGES_PER_SECOND = "images_per_second"
#: the kind of an exact likelihood (``GenerativeModel.likelihood == "exact"``); shown before any bound
EXACT = "exact"


@dataclass(frozen=True)
class MetricDisplay:
    """How one metric name is shown.

    ``table``: "quality" (one row per model and sampler), "likelihood" (one row per model),
    "memorisation" (one row per model and sampler: samples against the training split) or "cost"; ``scale`` multiplies values for display (seconds -> ms: 1e3), the title names
    the scaled unit; ``direction``: "higher" or "lower" is better, None for a count that is
    not ranked; ``per_model``: measured once per model (no sampler); ``per_extractor``:
    computed on every configured feature extractor, so the extractor is part of the column;
    ``kindless``: the row's ``kind`` is not part of the column (each model's primary
    estimate shares one column); ``floor_of``: this name is a reference value for that
    metric (the real-data floor, the data's entropy), shown as a reference row.
    """

    title: str
    table: TableName
    scale: float = 1.0
    direction: Direction | None = None
    per_model: bool = False
    per_extractor: bool = False
    kindless: bool = False
    floor_of: str | None = None

    @property
    def higher(self) -> bool | None:
        """True when higher is better, False when lower is, None when not ranked."""
        return None if self.direction is None else self.direction == "higher"


def with_floor(name: str, display: MetricDisplay) -> dict[str, MetricDisplay]:
    """``name`` and its real-data floor ``name + "_floor"`` (same title, table and direction)."""
    return {name: display, f"{name}_floor": dataclasses.replace(display, floor_of=name)}


RUNNER_DISPLAY: dict[str, MetricDisplay] = {
    VAL_BITS_PER_DIM: MetricDisplay("val bits/dim (primary estimate)", "likelihood", direction="lower", per_model=True,
                                    kindless=True),
    DATA_ENTROPY: MetricDisplay("data entropy", "likelihood", per_model=True, floor_of=BITS_PER_DIM),
}


def collect_displays(metric_classes: Iterable[type]) -> dict[str, MetricDisplay]:
    """Every metric's declared displays, in the order the metrics are given, then the runner's own.

    A metric name declared by two metrics is an error (its rows could not be told apart).
    """
    out: dict[str, MetricDisplay] = {}
    owner: dict[str, str] = {}
    sources = [(getattr(cls, "name", cls.__name__), getattr(cls, "display", {})) for cls in metric_classes]
    for source, displays in [*sources, ("the runner", RUNNER_DISPLAY)]:
        for metric, display in displays.items():
            if metric in out:
                raise ValueError(f"metric rows {metric!r} are declared by both {owner[metric]} and {source}")
            out[metric], owner[metric] = display, source
    return out


def registry_displays(registry) -> dict[str, MetricDisplay]:
    """The displays of every metric in ``registry`` (in registration order) and of the runner's rows."""
    return collect_displays(entry.cls for entry in registry.metrics.entries.values())
