"""Columns the report derives from each run's own rows: FID / floor, KID - floor, FID test - train.

Per run, sampler setting, sampling seed and extractor, the model's value is paired with the
same run's reference value (its real-data floor ``<metric>_floor``, or its FID against the
training split), so each derived value is a per-seed quantity and its cell gets the same
interval as every other cell (``genbench.report.intervals``: 1.96 standard errors for one
run, Student t over seeds otherwise).  The standard errors propagate to first order, the two
estimates taken as independent:

* ratio r = F / L (FID over its floor, the delta method):
  se(r)^2 = se(F)^2 / L^2 + F^2 se(L)^2 / L^4
* difference d = A - B (KID minus its floor; FID against test minus against train):
  se(d)^2 = se(A)^2 + se(B)^2

Both estimates of a pair are measured against the same test split (or the same samples), which
correlates them positively; ignoring a positive covariance overstates the variance of a ratio
or a difference, so these intervals are conservative.  Where the train-FID row carries the
standard error of the gap from paired bootstrap replicates (``details["gap_stderr"]``: the same
resampled samples on both sides, so the covariance is in it) that one is used instead.  A
missing standard error on either side leaves the derived value without one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from genbench.metrics.display import FID, MetricDisplay

KID = "kid"
FID_TRAIN = "fid_train"
FID_OVER_FLOOR = "fid_over_floor"
KID_MINUS_FLOOR = "kid_minus_floor"
FID_TEST = "fid_test"
FID_GAP = "fid_test_minus_train"
#: a row's details name how its value was derived
METHODS = {
    FID_OVER_FLOOR: "ratio of the run's FID to its own real-data floor; se by the delta method (independence)",
    KID_MINUS_FLOOR: "difference of the run's KID and its own real-data floor; se = sqrt(se_a^2 + se_b^2)",
    FID_TEST: "the run's FID against the test split (as in the quality table)",
    FID_GAP: ("the run's FID against the test split minus against the training split; se from paired bootstrap "
              "replicates where the row states one, else sqrt(se_a^2 + se_b^2)"),
}
#: the metrics the report derives (never measured by a run: a results file holds them, a cell's rows.json does not)
DERIVED_METRICS = frozenset(METHODS)
#: the keys that pair a model's row with its reference row of the same run
PAIR_KEYS = ["run_id", "extractor"]
SAMPLE_KEYS = ["run_id", "extractor", "sampler", "sampling_seed"]


@dataclass(frozen=True)
class Derivation:
    name: str
    a: str  # the model's metric
    b: str  # the reference metric of the same run
    op: str  # "ratio" | "difference"
    by: tuple[str, ...]  # how a's rows find their b row
    higher: bool | None  # the rows' higher_is_better


DERIVATIONS = (
    Derivation(FID_OVER_FLOOR, FID, f"{FID}_floor", "ratio", tuple(PAIR_KEYS), False),
    Derivation(KID_MINUS_FLOOR, KID, f"{KID}_floor", "difference", tuple(PAIR_KEYS), False),
    Derivation(FID_GAP, FID, FID_TRAIN, "difference", tuple(SAMPLE_KEYS), None),
)


def _suffixed(title: str, words: str) -> str:
    """``words`` after the metric's name, before a scale or unit suffix: "KID ×10³" -> "KID − floor ×10³"."""
    cut = min((i for i in (title.find(" ×"), title.find(" (")) if i > 0), default=len(title))
    return title[:cut] + words + title[cut:]


def derived_displays(displays: dict[str, MetricDisplay]) -> dict[str, MetricDisplay]:
    """``displays`` with the derived columns inserted right after the metric they derive from."""
    fid = displays.get(FID, MetricDisplay("FID", "quality", direction="lower", per_extractor=True))
    kid = displays.get(KID, MetricDisplay("KID", "quality", direction="lower", per_extractor=True))
    train = displays.get(FID_TRAIN)
    extra = {
        FID: {FID_OVER_FLOOR: replace(fid, title=_suffixed(fid.title, " / floor"), scale=1.0, floor_of=None,
                                     auto_scale=None)},
        KID: {KID_MINUS_FLOOR: replace(kid, title=_suffixed(kid.title, " − floor"), floor_of=None)},
    }
    if train is not None:
        extra[FID_TRAIN] = {
            FID_TEST: replace(train, title=_suffixed(fid.title, " vs test split"), direction=None, floor_of=None),
            FID_GAP: replace(train, title=_suffixed(fid.title, " test − train"), direction=None, floor_of=None),
        }
    out: dict[str, MetricDisplay] = {}
    for name, display in displays.items():
        out[name] = display
        out.update(extra.get(name, {}))
    for added in extra.values():
        for name, display in added.items():
            out.setdefault(name, display)
    return out


def _gap_stderr(details: object) -> float:
    """The paired-bootstrap standard error of FID test - train a train-FID row states, else nan."""
    try:
        value = json.loads(details).get("gap_stderr") if isinstance(details, str) else None
        return float(value) if value is not None else float("nan")
    except (ValueError, TypeError, AttributeError):
        return float("nan")


def _pair(df: pd.DataFrame, d: Derivation) -> pd.DataFrame:
    a = df[df["metric"] == d.a]
    b = df[df["metric"] == d.b]
    if a.empty or b.empty:
        return a.iloc[0:0]
    keys = list(d.by)
    paired = [_gap_stderr(x) for x in b["details"]] if "details" in b else [np.nan] * len(b)
    ref = (b.assign(_v=pd.to_numeric(b["value"], errors="coerce"), _s=pd.to_numeric(b["stderr"], errors="coerce"),
                    _p=paired).groupby(keys, dropna=False)[["_v", "_s", "_p"]].mean().reset_index())
    m = a.merge(ref, on=keys, how="inner")
    va, sa = pd.to_numeric(m["value"], errors="coerce"), pd.to_numeric(m["stderr"], errors="coerce")
    vb, sb = m["_v"], m["_s"]
    if d.op == "ratio":
        ok = vb > 0
        value = (va / vb).where(ok)
        stderr = np.sqrt(sa ** 2 / vb ** 2 + va ** 2 * sb ** 2 / vb ** 4).where(ok)
    else:
        value, stderr = va - vb, np.sqrt(sa ** 2 + sb ** 2)
        if d.name == FID_GAP:
            stderr = m["_p"].where(m["_p"].notna(), stderr)
    details = json.dumps({"derived_from": [d.a, d.b], "method": METHODS[d.name]}, sort_keys=True)
    return m.drop(columns=["_v", "_s", "_p"]).assign(metric=d.name, value=value, stderr=stderr, unit="", kind="",
                                                details=details, higher_is_better=d.higher)


def derived_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The derived rows of ``df`` (prepared rows of one data set), in the tidy rows' columns."""
    parts = [_pair(df, d) for d in DERIVATIONS]
    if not df[df["metric"] == FID_TRAIN].empty:
        fid = df[df["metric"] == FID]
        parts.append(fid[fid["run_id"].isin(set(df.loc[df["metric"] == FID_TRAIN, "run_id"]))].assign(
            metric=FID_TEST, details=json.dumps({"method": METHODS[FID_TEST]})))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return df.iloc[0:0]
    return pd.concat(parts, ignore_index=True)[list(df.columns)]


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus its derived rows."""
    extra = derived_rows(df)
    return df if extra.empty else pd.concat([df, extra], ignore_index=True)
