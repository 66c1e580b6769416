"""Possible memorisation: a model whose FID reaches the real-data floor while its samples sit closer to the
training set than real test images do.

A model that copies its training images scores an FID at or below the floor (real images
against the test split), which alone cannot tell generalisation from copying.  The
memorisation metric measures, for each sample, the distance to its nearest training image and
reports the share of samples closer than the 5th percentile of the same distance for real test
images: about 0.05 when samples are no closer to the training set than new real images are.

A (model, sampler setting) is flagged when both hold:

* **FID at or below the floor**: the lower end of its FID / floor interval is <= 1 (the
  interval overlaps 1 or lies below it; ``genbench.report.derived``);
* **closer than real data**: in some space (pixels or an extractor's features) the share p
  over its runs' N samples (pooled: p = sum_i p_i n_i / N) exceeds the expected p0 by more than
  ``SIGMAS`` standard errors of a share of samples drawn like real images,
  se0 = sqrt(p0 (1 - p0) (1/N + 1/m)), m the number of test images whose distances set the
  5th percentile (``n_test_reference`` in the rows' details; the threshold's own noise, not
  reduced by pooling runs, since they share the test split; without it the binomial
  sqrt(p0 (1 - p0) / N)).  The margin of 3 (not 2) keeps real validation data, whose share
  is p0 up to noise, from being flagged by chance.
"""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from genbench.metrics.display import MetricDisplay
from genbench.report.cells import Table
from genbench.report.derived import FID_OVER_FLOOR

SIGMAS = 3.0
#: the key of a row's details that holds the share expected without memorisation (0.05 for the 5th percentile)
EXPECTED_KEY = "expected_share"
DEFAULT_EXPECTED = 0.05
#: the key of a row's details that holds how many test images set the 5th-percentile threshold
N_TEST_KEY = "n_test_reference"
#: the closer-than-the-5th-percentile share (``genbench.metrics.memorisation``), recognised by name too
PROXIMITY_NAMES = ("closer_than_p5",)
FLAG = "possible memorisation"


def _details(text: Any) -> dict[str, Any]:
    try:
        d = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def proximity_rows(df: pd.DataFrame, shown: dict[str, MetricDisplay]) -> pd.DataFrame:
    """The model rows of every closer-than-the-5th-percentile share (named so, or stating the share expected
    without memorisation in ``details``), with that expected share as ``expected``."""
    details = [_details(d) for d in df["details"]] if "details" in df else [{}] * len(df)
    expected = pd.Series([d.get(EXPECTED_KEY) for d in details], index=df.index, dtype=object)
    is_floor = df["metric"].map(lambda m: m in shown and shown[m].floor_of is not None).astype(bool)
    keep = (df["metric"].isin(PROXIMITY_NAMES) | expected.notna()) & ~is_floor & df["role"].isin(["model", "baseline", "external"])
    out = df[keep].copy()
    out["expected"] = pd.to_numeric(expected[keep], errors="coerce").fillna(DEFAULT_EXPECTED).astype(float)
    return out


def excess(rows: pd.DataFrame) -> dict[str, float]:
    """Pooled share over runs, its expected value, the total N and how many standard errors above (see above)."""
    v = pd.to_numeric(rows["value"], errors="coerce")
    n = pd.to_numeric(rows["n"], errors="coerce").fillna(1.0)
    ok = v.notna()
    total = float(n[ok].sum())
    p0 = float(rows["expected"].iloc[0]) if len(rows) else DEFAULT_EXPECTED
    if total <= 0:
        return {"share": float("nan"), "expected": p0, "n": 0, "sigmas_above": float("nan")}
    share = float((v[ok] * n[ok]).sum() / total)
    m = [_details(d).get(N_TEST_KEY) for d in rows.loc[ok, "details"]] if "details" in rows else []
    m = [float(x) for x in m if isinstance(x, (int, float)) and x > 0]
    se0 = math.sqrt(p0 * (1 - p0) * (1 / total + (1 / (sum(m) / len(m)) if m else 0.0)))
    return {"share": share, "expected": p0, "n": int(total), "sigmas_above": (share - p0) / se0 if se0 > 0 else float("inf")}


def memorisation_flags(df: pd.DataFrame, shown: dict[str, MetricDisplay], quality: Table | None) -> list[dict[str, Any]]:
    """One record per (model, sampler) that meets both conditions of the module docstring."""
    if quality is None:
        return []
    ratio_cols = [c for c, col in enumerate(quality.columns) if col.metric == FID_OVER_FLOOR]
    prox = proximity_rows(df, shown)
    if not ratio_cols or prox.empty:
        return []
    flags = []
    for r, row in enumerate(quality.rows):
        if row.role == "floor":
            continue
        at_floor = []
        for c in ratio_cols:
            cell = quality.cell(r, c)
            if cell is not None and cell.finite and cell.mean - (cell.ci if math.isfinite(cell.ci) else 0.0) <= 1.0:
                at_floor.append((quality.columns[c].extractor, cell))
        if not at_floor:
            continue
        mine = prox[(prox["model"] == row.model) & ((prox["sampler"] == row.sampler) | (prox["sampler"] == ""))]
        for (metric, space), g in mine.groupby(["metric", "extractor"], sort=True):
            e = excess(g)
            if e["sigmas_above"] > SIGMAS:  # nan (no samples) is never above
                extractor, cell = at_floor[0]
                flags.append({"model": row.model, "sampler": row.sampler, "fid_over_floor": cell.mean,
                              "fid_over_floor_ci95": cell.ci, "fid_extractor": extractor, "metric": metric,
                              "space": space or "pixels", **e})
                row.flag = FLAG
                break
    return flags


def flag_sentence(f: dict[str, Any]) -> str:
    """One flag in words (the page and results.md)."""
    ci = f.get("fid_over_floor_ci95")
    ratio = f"{f['fid_over_floor']:.3g}" + (f" ± {ci:.2g}" if ci is not None and math.isfinite(ci) else "")
    return (f"FID / floor = {ratio} [{f['fid_extractor']}] reaches the real-data floor while {f['share']:.1%} of "
            f"its {f['n']} samples are closer to the training set ({f['space']}) than the 5th percentile of real test "
            f"images' distances to it (expected {f['expected']:.0%}; {f['sigmas_above']:.1f} binomial standard errors "
            "above). Copying training images would look like this; check the memorisation table.")
