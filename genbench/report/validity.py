"""Likelihoods that cannot be right: bits/dim below the true entropy of the data.

No model can assign the data a smaller expected code length than its entropy H (Shannon's
source coding theorem), so a test-split bits/dim more than ``sigmas`` standard errors below
H is a bug, not a result; it is flagged and never marked best.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from genbench.metrics.display import BITS_PER_DIM

INVALID_SIGMAS = 3.0


def invalid_likelihoods(df: pd.DataFrame, entropy: float | None, sigmas: float = INVALID_SIGMAS) -> list[dict[str, Any]]:
    """Runs whose bits/dim is more than ``sigmas`` standard errors below the data's entropy.

    Test-split bits/dim only (they carry a standard error; a finite sample's mean may fall
    slightly below the entropy by chance).  A missing standard error counts as zero.
    """
    if entropy is None or not math.isfinite(entropy):
        return []
    out = []
    lik = df[df["metric"] == BITS_PER_DIM]  # validation bits/dim has no standard error: not judged
    for r in lik.itertuples():
        se = 0.0 if r.stderr is None or not math.isfinite(r.stderr) else float(r.stderr)
        if r.value < entropy - sigmas * se:
            gap = (entropy - r.value) / se if se > 0 else float("inf")
            out.append({"model": r.model, "metric": r.metric, "kind": r.kind, "run_id": r.run_id, "seed": r.seed,
                        "value": float(r.value), "stderr": se, "entropy": entropy, "sigmas_below": gap})
    return out
