"""What a leaderboard is made of: columns, rows, cells (each with its mark), tables and boards.

A data set's board has up to four tables with the same model order: sample quality (a
row per model and sampler setting), likelihood (a row per model), memorisation (a row per
model and sampler) and cost (a row per model and sampler; per-model values such as
training time span the model's rows).  Rows measured in another setting than the table's
main one (another preset, sample size, split or extractor version) are kept ``apart``:
shown after the ranked rows with a tag that says how they differ, never marked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

#: a cell's standing in its column: "best", "tied" (with the best; not separable from it) or "" (neither)
Mark = Literal["best", "tied", ""]
#: a row's role: a model, the per-pixel baseline, samples scored by ``genbench eval`` (made elsewhere), or a
#: reference value (real-data floor, data entropy)
RowRole = Literal["model", "baseline", "external", "floor"]
TABLE_TITLES = {"quality": "Sample quality", "likelihood": "Likelihood", "memorisation": "Memorisation", "cost": "Cost"}


@dataclass(frozen=True)
class Column:
    """One (metric, kind, extractor) of a table, with how it is shown."""

    metric: str
    kind: str
    extractor: str
    title: str
    higher: bool | None  # True: higher is better; False: lower is; None: not ranked
    per_model: bool
    unit: str = ""
    n: str = ""  # sample sizes behind the values ("1000" or "500, 1000")
    reference: str = ""  # what the values are measured against
    scale: float = 1.0  # display scale (the title names the scaled unit)
    per_extractor: bool = False  # computed on each configured feature extractor


@dataclass
class Cell:
    """Mean over runs (seeds) of one row's values in one column, with its 95% interval half-width ``ci``.

    ``method`` says how the interval was made (``genbench.report.intervals``): "normal" (one run:
    1.96 standard errors), "t" (Student t over seeds), "" (none); ``stderr`` is the mean standard
    error within a run (nan where none was recorded).
    """

    mean: float
    ci: float = float("nan")
    seeds: int = 0
    invalid: bool = False
    mark: Mark = ""
    note: str = ""
    method: str = ""
    stderr: float = float("nan")

    @property
    def finite(self) -> bool:
        return math.isfinite(self.mean)


@dataclass
class Row:
    """One line of a table; ``apart``: measured in another setting than the table's main one (``tag`` says
    how, e.g. "tiny, n=8"), so shown after the ranked rows and never marked."""

    model: str
    sampler: str
    role: RowRole
    seeds: int = 0
    apart: bool = False
    tag: str = ""
    flag: str = ""  # a warning about the row's samples ("possible memorisation")


@dataclass
class Table:
    name: str  # quality | likelihood | cost
    title: str
    columns: list[Column]
    rows: list[Row]
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    setting: str = ""  # the setting the ranked rows share ("preset quick, n=1000"); apart rows differ from it
    extractors: tuple[tuple[str, str], ...] = ()  # that setting's (extractor, weights sha256) pairs, sorted

    def cell(self, r: int, c: int) -> Cell | None:
        return self.cells.get((r, c))

    def column_cells(self, c: int) -> list[tuple[int, Cell]]:
        """(row index, cell) of every filled cell of column ``c``, in row order."""
        return sorted(((r, cell) for (r, cc), cell in self.cells.items() if cc == c), key=lambda rc: rc[0])


@dataclass
class Board:
    dataset: str
    tables: list[Table]
    invalid: list[dict[str, Any]]  # one record per flagged (model, kind, run)
    entropy: float | None
    memorisation: list[dict[str, Any]] = field(default_factory=list)  # one record per flagged (model, sampler)
    setting: str = ""  # the main setting the ranked rows share ("preset quick, n=1000")
