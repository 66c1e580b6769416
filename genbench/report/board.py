"""Tidy rows -> one leaderboard per data set: mean ± 95% CI over runs per (model, sampler) and column.

Reference rows: the real-data floor (every metric's ``floor_of`` rows, e.g. ``fid_floor``;
one row per FID-floor sample size, since a Frechet distance's bias depends on n) and the
data's entropy (a bound no model's bits/dim may go below).  Rows whose ``role`` is
"baseline" (the per-pixel baseline) come last among the models.  A bits/dim more than
three standard errors below the data entropy is flagged invalid and never marked best.
"""
from __future__ import annotations

import math

import pandas as pd

from genbench.metrics.display import BITS_PER_DIM, DATA_ENTROPY, FID, VAL_BITS_PER_DIM, MetricDisplay
from genbench.report.cells import TABLE_TITLES, Board, Cell, Row, Table
from genbench.report.columns import board_displays, build_columns
from genbench.report.intervals import interval_cell, per_run
from genbench.report.marks import mark_best
from genbench.report.rows import prepared
from genbench.report.validity import INVALID_SIGMAS, invalid_likelihoods

FLOOR_LABEL = "real data (floor)"
ENTROPY_LABEL = "data entropy (floor)"
#: the columns the data-entropy row fills: the core's test-split and validation bits/dim
ENTROPY_BOUNDS = (BITS_PER_DIM, VAL_BITS_PER_DIM)


def _model_order(df: pd.DataFrame, models: list[str], baselines: set[str]) -> list[str]:
    """Models by their best mean FID (first FID column), then by bits/dim, then by name; baselines last."""
    def score(model: str) -> tuple:
        sub = df[df["model"] == model]
        fid = sub[sub["metric"] == FID]
        if not fid.empty:
            first_extractor = sorted(df.loc[df["metric"] == FID, "extractor"].unique())[0]
            best = fid[fid["extractor"] == first_extractor].groupby("sampler")["value"].mean()
            if not best.empty and math.isfinite(best.min()):
                return (0, float(best.min()), model)
        bpd = sub[sub["metric"] == BITS_PER_DIM]["value"]
        if not bpd.empty:
            return (1, float(bpd.min()), model)
        return (2, 0.0, model)

    ordered = sorted((m for m in models if m not in baselines), key=score)
    return ordered + [m for m in models if m in baselines]


def _floor_groups(floors: pd.DataFrame) -> list[tuple[int | None, set[str]]]:
    """Floor rows: one per FID-floor sample size (a Frechet distance's bias depends on n), as sets of run ids."""
    if floors.empty:
        return []
    fid = floors[floors["floor_of"] == FID]
    sizes = pd.to_numeric(fid["n"], errors="coerce")
    if fid.empty or sizes.nunique() <= 1:
        return [(None, set(floors["run_id"]))]
    return [(int(n), set(g["run_id"])) for n, g in fid.assign(n=sizes).dropna(subset=["n"]).groupby("n")]


def _value_cell(vals: pd.DataFrame) -> Cell:
    """Mean ± CI over runs of one row's values in one column, with what it is made of as a note."""
    cell = interval_cell(per_run(vals))
    se = vals["stderr"].dropna()
    if len(se):
        cell.note = (f"mean over {cell.seeds} seed(s)" + ("" if math.isnan(cell.ci) else " ± 95% CI over seeds")
                     + f"; standard error within a run (test split): {float(se.mean()):.2g}")
    return cell


def _floor_cell(fl: pd.DataFrame) -> Cell:
    cell = interval_cell(per_run(fl, sort=True))
    n = sorted({int(v) for v in pd.to_numeric(fl["n"], errors="coerce").dropna()})
    cell.note = ("real images outside the test split vs the test split" + (f" (n={', '.join(map(str, n))})" if n else ""))
    return cell


def build_board(df: pd.DataFrame, dataset: str, displays: dict[str, MetricDisplay]) -> Board:
    """The leaderboard of one data set (``df`` already restricted to it and ``prepared``); ``displays``:
    the registry's metric displays (``genbench.metrics.display.registry_displays``)."""
    shown = board_displays(df, displays)
    df = df.assign(floor_of=df["metric"].map(lambda m: shown[m].floor_of or ""))
    is_reference = df["floor_of"] != ""
    entropy_rows = df.loc[df["metric"] == DATA_ENTROPY, "value"].dropna()
    entropy = float(entropy_rows.mean()) if not entropy_rows.empty else None
    invalid = invalid_likelihoods(df, entropy, INVALID_SIGMAS)
    invalid_keys = {(i["model"], i["metric"], "" if shown[i["metric"]].kindless else i["kind"]) for i in invalid}
    floors = df[is_reference & (df["metric"] != DATA_ENTROPY)]
    baselines = set(df.loc[df["role"] == "baseline", "model"])
    models = _model_order(df, sorted(df.loc[~is_reference, "model"].unique()), baselines)
    runs_per_model = df.groupby("model")["run_id"].nunique().to_dict()
    tables = []
    for name, columns in build_columns(df, shown, displays).items():
        if not columns:
            continue
        per_sampler = any(not c.per_model for c in columns)
        rows: list[Row] = []
        for model in models:
            own = df[(df["model"] == model) & (df["sampler"] != "") & ~is_reference]
            samplers = list(dict.fromkeys(own["sampler"])) if per_sampler else []
            role = "baseline" if model in baselines else "model"
            for s in samplers or [""]:
                rows.append(Row(model, s, role, runs_per_model.get(model, 0)))
        floor_runs: dict[int, set[str]] = {}
        if name == "quality":
            for n, runs in _floor_groups(floors):
                floor_runs[len(rows)] = runs
                label = FLOOR_LABEL if n is None else f"{FLOOR_LABEL[:-1]}, n={n})"
                rows.append(Row(label, "", "floor", int(floors[floors["run_id"].isin(runs)]["seed"].nunique())))
        elif name == "likelihood" and entropy is not None:
            rows.append(Row(ENTROPY_LABEL, "", "floor", 0))
        table = Table(name, TABLE_TITLES[name], columns, rows)
        for ci_, col in enumerate(columns):
            sel = df[(df["metric"] == col.metric) & ((df["kind"] == col.kind) | shown[col.metric].kindless)
                     & (df["extractor"] == col.extractor)]
            col_floors = floors[(floors["floor_of"] == col.metric) & (floors["extractor"] == col.extractor)]
            for ri, row in enumerate(rows):
                if row.role == "floor":
                    if col.metric in ENTROPY_BOUNDS:
                        if entropy is not None:
                            table.cells[(ri, ci_)] = Cell(entropy, note="true entropy of the data: no model may go below")
                        continue
                    fl = col_floors[col_floors["run_id"].isin(floor_runs.get(ri, set()))]
                    if not fl.empty:
                        table.cells[(ri, ci_)] = _floor_cell(fl)
                    continue
                vals = sel[(sel["model"] == row.model) & ((sel["sampler"] == row.sampler) | (sel["sampler"] == ""))]
                if vals.empty:
                    continue
                cell = _value_cell(vals)
                cell.invalid = (row.model, col.metric, col.kind) in invalid_keys
                if cell.invalid:
                    cell.note = f"INVALID: below the data entropy by more than {INVALID_SIGMAS:g} standard errors"
                table.cells[(ri, ci_)] = cell
            mark_best(table, ci_)
        tables.append(table)
    return Board(dataset, tables, invalid, entropy)


def build_boards(frame: pd.DataFrame, displays: dict[str, MetricDisplay], baseline: str | None = None) -> dict[str, Board]:
    """One leaderboard per data set; ``baseline`` (a model name, optional) is shown as a baseline besides the
    rows whose ``role`` says so."""
    if frame.empty:
        return {}
    df = prepared(frame, baseline)
    return {str(ds): build_board(g, str(ds), displays) for ds, g in df.groupby("dataset", sort=True)}
