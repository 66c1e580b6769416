"""Tidy rows -> one leaderboard per data set: mean ± 95% interval per (model, sampler) and column.

Intervals: ``intervals`` (one run: 1.96 standard errors; several seeds: Student t over them).
Columns derived from each run's own rows (FID / floor, KID - floor, FID test - train) come from
``derived``.  Reference rows: the real-data floor (every metric's ``floor_of`` rows, e.g.
``fid_floor``; one row per FID-floor sample size, since a Frechet distance's bias depends on n)
and the data's entropy (a bound no model's bits/dim may go below).  Rows whose ``role`` is
"baseline" (the per-pixel baseline) come last among the models; "external" rows (``genbench eval``: samples made
elsewhere) are ranked with the models, their setting judged by n, split and extractor weights alone (they have
no preset); rows of another setting
(``settings``) after them, never ranked.  Marks: ``marks`` (best only where intervals
separate).  A bits/dim more than three standard errors below the data entropy is flagged
invalid and never marked; a model at the FID floor whose samples sit closer to the training
set than real images do is flagged "possible memorisation" (``memorisation``).
"""
from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd

from genbench.metrics.display import BITS_PER_DIM, DATA_ENTROPY, FID, VAL_BITS_PER_DIM, MetricDisplay
from genbench.report.cells import TABLE_TITLES, Board, Cell, Row, Table
from genbench.report.columns import board_displays, build_columns
from genbench.report.derived import FID_OVER_FLOOR, KID_MINUS_FLOOR, derived_displays, with_derived
from genbench.report.formatting import interval_note
from genbench.report.intervals import rows_cell
from genbench.report.marks import mark_best
from genbench.report.memorisation import FLAG, memorisation_flags
from genbench.report.rows import prepared
from genbench.report.settings import drop_tiny, extractor_pairs, main_setting, other_weights_tag, row_setting
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


def _floor_groups(floors: pd.DataFrame, metric: str,
                  main_extractors: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, set]]:
    """Floor rows as (label, the indices of ``floors`` rows they hold): one per extractor weights and per sample
    size of ``metric``'s floor.

    A floor measured with other weights of an extractor (another machine's fit of the classifier) is another
    measurement, not a second draw of the same one: it gets its own row, tagged like the model rows scored with
    those weights ("other classifier weights"), and the main floor row holds the main setting's weights only.
    Within one set of weights, a Frechet distance's bias depends on n: one row per n where they differ."""
    if floors.empty:
        return []
    mine = dict(main_extractors)
    other = pd.Series([e in mine and s != mine[e] for e, s in extractor_pairs(floors)], index=floors.index)
    groups = []
    for apart, part in ((False, floors[~other]), (True, floors[other])):
        if part.empty:
            continue
        tag = [other_weights_tag(map(str, part["extractor"]))] if apart else []
        of = part[part["floor_of"] == metric]
        sizes = pd.to_numeric(of["n"], errors="coerce")
        if of.empty or sizes.nunique() <= 1:
            groups.append((_floor_label(tag), set(part.index)))
            continue
        groups += [(_floor_label([*tag, f"n={int(n)}"]), set(part.index[part["run_id"].isin(set(g["run_id"]))]))
                   for n, g in of.assign(n=sizes).dropna(subset=["n"]).groupby("n")]
    return groups


def _floor_label(tags: list[str]) -> str:
    """"real data (floor)", or with ``tags``: "real data (floor, n=500)"."""
    return FLOOR_LABEL if not tags else f"{FLOOR_LABEL[:-1]}, {', '.join(tags)})"


def _value_cell(vals: pd.DataFrame) -> Cell:
    """Mean and 95% interval of one row's values in one column (``intervals.rows_cell``), with how it was made."""
    cell = rows_cell(vals)
    cell.note = interval_note(cell)
    return cell


def _floor_cell(fl: pd.DataFrame) -> Cell:
    """The real-data floor, one value per seed: the floor's real images are a seeded choice, so the runs of one
    seed (one per model) wrote the same measurement, which counts once."""
    cell = rows_cell(fl.drop_duplicates(["seed", "metric", "extractor", "value"]), by="seed")
    n = sorted({int(v) for v in pd.to_numeric(fl["n"], errors="coerce").dropna()})
    sources = sorted({str(d["source"]) for d in map(_details, fl["details"] if "details" in fl else []) if d.get("source")})
    what = f"real images ({'; '.join(sources)})" if sources else "real images outside the test split"
    cell.note = (f"{what} in place of samples" + (f" (n={', '.join(map(str, n))})" if n else "") + "; " + interval_note(cell))
    return cell


def _details(text: object) -> dict:
    try:
        d = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _place_rows(table: Table, df: pd.DataFrame) -> None:
    """Split the table's model rows by setting (``settings``): the main setting's rows are ranked, the others
    move after them (before the reference rows), tagged with how they differ."""
    metrics = {c.metric for c in table.columns}
    sub = df[df["metric"].isin(metrics) & (df["floor_of"] == "")]
    ranked = [r for r in table.rows if r.role != "floor"]
    settings = {}
    for row in ranked:
        own = sub[(sub["model"] == row.model) & ((sub["sampler"] == row.sampler) | (sub["sampler"] == ""))]
        if not own.empty:
            settings[id(row)] = row_setting(own)
    trained = [row for row in ranked if row.role != "external"] or ranked  # external rows have no preset of their own
    main = main_setting([(row.model, settings[id(row)]) for row in trained if id(row) in settings])
    if main is None:
        return
    table.setting = main.describe()
    table.extractors = main.extractors
    presets = df.groupby("model")["preset"].agg(lambda p: "+".join(sorted(set(p)))).to_dict()
    for row in ranked:
        s = settings.get(id(row))
        if s is not None and row.role == "external":  # samples made elsewhere: n, split and extractors decide
            s = dataclasses.replace(s, preset=main.preset)
        elif s is None and row.role == "external":
            continue
        if s is not None and s != main:
            row.apart, row.tag = True, s.difference(main, row.model) or "other setting"
        elif s is None and presets.get(row.model, main.preset) != main.preset:  # no value here: its preset decides
            row.apart, row.tag = True, presets[row.model]
    order = ([r for r in ranked if not r.apart and r.role in ("model", "external")]
             + [r for r in ranked if not r.apart and r.role not in ("model", "external")]
             + [r for r in ranked if r.apart] + [r for r in table.rows if r.role == "floor"])
    table.rows[:] = order


def _reference_cell(metric: str) -> Cell | None:
    """What a floor row shows in a derived column: 1 (FID / floor) or 0 (KID - floor), by definition."""
    if metric == FID_OVER_FLOOR:
        return Cell(1.0, note="the floor over itself: 1 by definition")
    if metric == KID_MINUS_FLOOR:
        return Cell(0.0, note="the floor minus itself: 0 by definition")
    return None


def build_board(df: pd.DataFrame, dataset: str, displays: dict[str, MetricDisplay]) -> Board:
    """The leaderboard of one data set (``df`` already restricted to it and ``prepared``); ``displays``:
    the registry's metric displays (``genbench.metrics.display.registry_displays``)."""
    displays = derived_displays(displays)
    df = with_derived(df)
    shown = board_displays(df, displays)
    df = df.assign(floor_of=df["metric"].map(lambda m: shown[m].floor_of or ""))
    is_reference = df["floor_of"] != ""
    entropy_rows = df.loc[df["metric"] == DATA_ENTROPY, "value"].dropna()
    entropy = float(entropy_rows.mean()) if not entropy_rows.empty else None
    invalid = invalid_likelihoods(df, entropy, INVALID_SIGMAS)
    invalid_keys = {(i["model"], i["metric"], "" if shown[i["metric"]].kindless else i["kind"]) for i in invalid}
    floors = df[is_reference & (df["metric"] != DATA_ENTROPY)]
    baselines = set(df.loc[df["role"] == "baseline", "model"])
    externals = set(df.loc[df["role"] == "external", "model"]) - baselines  # genbench eval: ranked with the models
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
            role = "baseline" if model in baselines else "external" if model in externals else "model"
            for s in samplers or [""]:
                rows.append(Row(model, s, role, runs_per_model.get(model, 0)))
        table = Table(name, TABLE_TITLES.get(name, name), columns, rows)
        _place_rows(table, df)
        rows = table.rows
        floor_runs: dict[int, set] = {}  # floor row -> the indices of its ``floors`` rows
        with_floor = [c.metric for c in columns if (floors["floor_of"] == c.metric).any()]
        if with_floor:
            for label, held in _floor_groups(floors, FID if FID in with_floor else with_floor[0], table.extractors):
                floor_runs[len(rows)] = held
                rows.append(Row(label, "", "floor", int(floors.loc[sorted(held), "seed"].nunique())))
        if name == "likelihood" and entropy is not None:
            rows.append(Row(ENTROPY_LABEL, "", "floor", 0))
        for ci_, col in enumerate(columns):
            sel = df[(df["metric"] == col.metric) & ((df["kind"] == col.kind) | shown[col.metric].kindless)
                     & (df["extractor"] == col.extractor)]
            col_floors = floors[(floors["floor_of"] == col.metric) & (floors["extractor"] == col.extractor)]
            for ri, row in enumerate(rows):
                if row.role == "floor":
                    if row.model == ENTROPY_LABEL:
                        if col.metric in ENTROPY_BOUNDS:
                            table.cells[(ri, ci_)] = Cell(entropy, note="true entropy of the data: no model may go below")
                        continue
                    fl = col_floors[col_floors.index.isin(floor_runs.get(ri, set()))]
                    ref = _reference_cell(col.metric)
                    if not fl.empty:
                        table.cells[(ri, ci_)] = _floor_cell(fl)
                    elif ref is not None:
                        table.cells[(ri, ci_)] = ref
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
    quality = next((t for t in tables if t.name == "quality"), None)
    flags = memorisation_flags(df, shown, quality)
    flagged = {(f["model"], f["sampler"]) for f in flags}
    for t in tables:  # the flag follows the (model, sampler) into every table with a row per sampler setting
        for row in t.rows:
            if row.sampler and (row.model, row.sampler) in flagged:
                row.flag = FLAG
    main = next((t.setting for t in tables if t.setting), "")
    return Board(dataset, tables, invalid, entropy, flags, main)


def build_boards(frame: pd.DataFrame, displays: dict[str, MetricDisplay], baseline: str | None = None,
                 include_tiny: bool = False) -> dict[str, Board]:
    """One leaderboard per data set; ``baseline`` (a model name, optional) is shown as a baseline besides the
    rows whose ``role`` says so; ``include_tiny``: keep the results of the ``tiny`` preset (left out by default:
    a smoke test is not a result), which are then ranked only against rows of their own setting."""
    if frame.empty:
        return {}
    if not include_tiny:
        frame, _ = drop_tiny(frame)
        if frame.empty:
            return {}
    df = prepared(frame, baseline)
    return {str(ds): build_board(g, str(ds), displays) for ds, g in df.groupby("dataset", sort=True)}
