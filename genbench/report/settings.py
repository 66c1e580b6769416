"""What makes two leaderboard rows comparable: the same preset, data split, sample size and extractor weights.

A Frechet distance's bias falls with the sample size n, a ``tiny`` budget is a smoke test, a
different split or extractor version measures against something else: numbers from different
settings are never ranked together.  Each table's rows are grouped by their :class:`Setting`
(the data set is the board's); the setting most models share (a ``tiny`` one only when nothing
else is there) is the table's main one and is ranked; every other row is kept apart with a tag that says how it differs ("tiny, n=8").
Results of the ``tiny`` preset are left out of leaderboards unless asked for.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

#: the smoke-test preset whose results never enter a leaderboard unless asked for
TINY = "tiny"


@dataclass(frozen=True)
class Setting:
    """What a row's numbers were measured under (within one data set and table)."""

    preset: str
    split: str
    n: int | None  # the largest sample size behind the row's cells
    extractors: tuple[tuple[str, str], ...]  # (extractor, weights sha256), sorted

    def describe(self) -> str:
        parts = [f"preset {self.preset}" if self.preset else ""] + ([f"n={self.n}"] if self.n is not None else [])
        return ", ".join(p for p in parts if p)

    def difference(self, main: Setting, name: str = "") -> str:
        """How this setting differs from ``main``, in a few words ("tiny, n=8"); the preset is left out when the
        row's name already carries it ("vae [tiny]")."""
        out = []
        if self.preset != main.preset and not name.endswith(f"[{self.preset}]"):
            out.append(self.preset or "no preset")
        if self.n != main.n:
            out.append(f"n={self.n if self.n is not None else '?'}")
        if self.split != main.split:
            out.append("other split")
        if self.extractors != main.extractors:
            mine, theirs = dict(self.extractors), dict(main.extractors)
            out.append(other_weights_tag(e for e in set(mine) | set(theirs) if mine.get(e) != theirs.get(e)))
        return ", ".join(out)


def drop_tiny(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` without the rows of ``tiny``-preset runs, and how many runs were left out."""
    if frame.empty or "preset" not in frame:
        return frame, 0
    tiny = frame["preset"].astype(str) == TINY
    return frame[~tiny], int(frame.loc[tiny, "run_id"].nunique())


def other_weights_tag(extractors: Iterable[str]) -> str:
    """The tag of rows measured with other weights of these extractors: "other classifier weights"."""
    return "other " + "/".join(sorted(set(extractors))) + " weights"


def extractor_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(extractor, weights sha256) of each row, in row order ("" for a missing sha)."""
    sha = rows["extractor_sha256"] if "extractor_sha256" in rows else pd.Series("", index=rows.index)
    return [(str(e), str(s) if isinstance(s, str) else "") for e, s in zip(rows["extractor"], sha)]


def row_setting(rows: pd.DataFrame) -> Setting:
    """The setting of one table row from the tidy rows that fill its cells (prepared: string keys)."""
    presets = sorted(set(rows["preset"]))
    splits = sorted({str(s) for s in rows["split"] if isinstance(s, str) and s}) if "split" in rows else []
    ns = pd.to_numeric(rows["n"], errors="coerce").dropna() if "n" in rows else pd.Series(dtype=float)
    ext = rows[rows["extractor"] != ""] if "extractor" in rows else rows.iloc[0:0]
    shas = set(extractor_pairs(ext))
    return Setting("+".join(presets), "+".join(splits), int(ns.max()) if len(ns) else None, tuple(sorted(shas)))


def main_setting(settings: list[tuple[str, Setting]]) -> Setting | None:
    """The setting the ranked rows share, from (model, setting) per row: a non-``tiny`` one first, then the one
    most models share, then the larger n, then by name."""
    if not settings:
        return None
    models: dict[Setting, set[str]] = {}
    for model, s in settings:
        models.setdefault(s, set()).add(model)
    return max(models, key=lambda s: (s.preset != TINY, len(models[s]), s.n if s.n is not None else -1, s.describe()))
