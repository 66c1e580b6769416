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
import math
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
    metric (the real-data floor, the data's entropy), shown as a reference row;
    ``auto_scale``: a metric name whose values (with its floor's, per extractor) choose the
    display scale, replacing ``scale``: the power of 10^3 of :func:`readable_scale`, written in
    the column's title (``KID ×10³``), for a metric whose magnitude depends on the feature space.
    """

    title: str
    table: TableName
    scale: float = 1.0
    direction: Direction | None = None
    per_model: bool = False
    per_extractor: bool = False
    kindless: bool = False
    floor_of: str | None = None
    auto_scale: str | None = None

    @property
    def higher(self) -> bool | None:
        """True when higher is better, False when lower is, None when not ranked."""
        return None if self.direction is None else self.direction == "higher"


#: the largest display factor :func:`readable_scale` uses (values below 1e-10 are shown as they are)
MAX_SCALE_EXPONENT = 9
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def readable_scale(values: Iterable[float], smallest_shown: float = 0.1) -> float:
    """The display factor 10^(3k) (k = 0, 1, 2, 3) for a column of ``values``: the smallest one that shows the
    largest finite |value| as at least ``smallest_shown``.  KID with whitened 128-d features (values ~1e-3)
    is shown x10^3; with the classifier's features (~10) as it is.  Zeros and non-finite values are ignored;
    none left: 1."""
    largest = max((abs(float(v)) for v in values if math.isfinite(float(v)) and float(v) != 0.0), default=0.0)
    if largest == 0.0:
        return 1.0
    for exponent in range(0, MAX_SCALE_EXPONENT + 1, 3):
        if largest * 10.0 ** exponent >= smallest_shown:
            return 10.0 ** exponent
    return 10.0 ** MAX_SCALE_EXPONENT


def scale_suffix(scale: float) -> str:
    """`` ×10³`` for 1e3 (what a title says its values were multiplied by); "" for 1."""
    if scale == 1.0:
        return ""
    exponent = round(math.log10(scale))
    if 10.0 ** exponent == scale:
        return f" ×10{str(exponent).translate(_SUPERSCRIPT)}"
    return f" ×{scale:g}"


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
