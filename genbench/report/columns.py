"""A board's columns: one per (metric, kind, extractor), titled, placed and ordered by the metrics' displays.

Each metric declares its :class:`~genbench.metrics.display.MetricDisplay`; a metric that no
registered plugin declares (rows from a plugin not installed here) is placed from its rows:
per model when it has no sampler (likelihood table if in bits/dim, else cost), else in
the quality table; ``<name>_floor`` is then the floor of ``<name>``.  Columns follow the
declaration order, undeclared metrics after them by name.  Within one metric, "exact"
estimates come first, then the others best first by their mean (for bits/dim: the
tightest bound first), then by name.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from genbench.metrics.display import EXACT, MetricDisplay, readable_scale, scale_suffix
from genbench.report.cells import TABLE_TITLES, Column

FLOOR_SUFFIX = "_floor"


def _higher(values: pd.Series) -> bool | None:
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
    return None


def inferred_display(metric: str, rows: pd.DataFrame) -> MetricDisplay:
    """The display of a metric nobody declared, from its rows: per model when no row has a sampler
    (likelihood table if in bits/dim, else cost), else quality; the direction the rows state."""
    per_model = bool((rows["sampler"] == "").all())
    table = "likelihood" if per_model and rows["unit"].eq("bits/dim").all() else "cost" if per_model else "quality"
    higher = _higher(rows["higher_is_better"]) if "higher_is_better" in rows else None
    return MetricDisplay(metric, table, direction=None if higher is None else "higher" if higher else "lower",
                         per_model=per_model)


def board_displays(df: pd.DataFrame, displays: dict[str, MetricDisplay]) -> dict[str, MetricDisplay]:
    """The display of every metric in ``df``: declared in ``displays``, else inferred from its rows; an
    undeclared ``<name>_floor`` is the floor of ``<name>``."""
    groups = {str(m): g for m, g in df.groupby("metric", sort=False)}
    shown: dict[str, MetricDisplay] = {}
    for metric, rows in groups.items():
        base = metric[: -len(FLOOR_SUFFIX)] if metric.endswith(FLOOR_SUFFIX) else ""
        if metric in displays:
            shown[metric] = displays[metric]
        elif base:
            of_base = displays.get(base) or inferred_display(base, groups.get(base, rows))
            shown[metric] = replace(of_base, floor_of=base)
        else:
            shown[metric] = inferred_display(metric, rows)
    return shown


def _kind_key(kind: str, mean: float, higher: bool | None) -> tuple:
    if kind == EXACT or not kind:
        return (0, 0.0, kind)
    if higher is None or mean != mean:  # unranked, or no finite value: by name
        return (2, 0.0, kind)
    return (1, -mean if higher else mean, kind)


def build_columns(df: pd.DataFrame, shown: dict[str, MetricDisplay],
                  declared: dict[str, MetricDisplay]) -> dict[str, list[Column]]:
    """Columns per table (``TABLE_TITLES`` order); ``shown``: every metric's display (``board_displays``),
    ``declared``: the registry's (their order is the column order)."""
    out: dict[str, list[Column]] = {t: [] for t in TABLE_TITLES}
    metric_rows = df[df["metric"].map(lambda m: shown[m].floor_of is None)]
    kinds = [("" if shown[m].kindless else k) for m, k in zip(metric_rows["metric"], metric_rows["kind"])]
    metric_rows = metric_rows.assign(kind=kinds)
    keys = metric_rows.groupby(["metric", "kind", "extractor"], sort=False)
    means = keys["value"].mean()
    order = {m: i for i, m in enumerate(declared)}
    several_extractors = metric_rows.groupby("metric")["extractor"].nunique()
    feature_rows = metric_rows[metric_rows["metric"].map(lambda m: shown[m].per_extractor)]
    n_extractors = feature_rows.loc[feature_rows["extractor"] != "", "extractor"].nunique()

    def sort_key(key: tuple[str, str, str]) -> tuple:
        metric, kind, extractor = key
        return (order.get(metric, len(order)), metric, _kind_key(kind, float(means[key]), shown[metric].higher), extractor)

    for key in sorted(keys.groups, key=sort_key):
        metric, kind, extractor = key
        g = keys.get_group(key)
        spec = shown[metric]
        scale = spec.scale if spec.auto_scale is None else _auto_scale(df, spec.auto_scale, extractor)
        title = spec.title + (scale_suffix(scale) if spec.auto_scale is not None else "")
        if kind:
            title += f" ({kind})"
        if extractor and (several_extractors.get(metric, 0) > 1 or (spec.per_extractor and n_extractors > 1)):
            title += f" [{extractor}]"
        elif not extractor and spec.per_extractor and several_extractors.get(metric, 0) > 1:
            title += " [pixels]"  # measured in pixel space beside the extractors' feature spaces
        unit = next((u for u in g["unit"] if u), "")
        ns = sorted({int(v) for v in pd.to_numeric(g["n"], errors="coerce").dropna()}) if "n" in g else []
        refs = sorted({str(v) for v in g["reference"].dropna() if str(v)}) if "reference" in g else []
        out[spec.table].append(Column(metric, kind, extractor, title, spec.higher, spec.per_model, unit,
                                      ", ".join(map(str, ns)), "; ".join(refs), scale, spec.per_extractor))
    return out


def _auto_scale(df: pd.DataFrame, metric: str, extractor: str) -> float:
    """The display scale of ``metric`` (and of its floor and the columns derived from it) on ``extractor``: one
    factor for every column that shows it, chosen from the values of the metric and its floor."""
    rows = df[df["metric"].isin([metric, metric + FLOOR_SUFFIX]) & (df["extractor"] == extractor)]
    return readable_scale(pd.to_numeric(rows["value"], errors="coerce").dropna())
