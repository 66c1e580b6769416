"""``write_report``: stored runs -> index.html + results.csv/.md/.tex/.json in one folder.

The registry the command was given says how each metric is displayed and which data sets
and presets exist (for the real-image grids and the commands that reproduce the runs).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from genbench.io import atomic_write_text
from genbench.metrics.display import FID, MetricDisplay, registry_displays
from genbench.naming import safe_name as _safe  # the file name the runner gives a sampler's grid
from genbench.report import plots
from genbench.report.board import build_boards
from genbench.report.cells import Board
from genbench.report.columns import board_displays
from genbench.report.export import results_csv, results_json, with_derived_rows
from genbench.report.inputs import RunSet, load_curves, real_grid_png, run_command, select_runs
from genbench.report.latex import to_latex
from genbench.report.markdown import to_markdown
from genbench.report.page import DatasetView, ModelView, PageInputs, render_page
from genbench.report.rows import prepared
from genbench.report.settings import drop_tiny

if TYPE_CHECKING:
    from genbench.plugins import Registry

OUTPUTS = ("index.html", "results.csv", "results.md", "results.tex", "results.json")


def _model_views(board: Board, runset: RunSet, df: pd.DataFrame) -> list[ModelView]:
    order: dict[str, str] = {}  # model -> role, in the board's order
    for t in board.tables:
        for r in t.rows:
            if r.role != "floor":
                order.setdefault(r.model, r.role)
    views = []
    for model, role in order.items():
        ids = set(df.loc[(df["model"] == model) & (df["dataset"] == board.dataset), "run_id"])
        done = sorted((s for s in runset.done if s.get("run_id", Path(s["run_dir"]).name) in ids),
                      key=lambda s: (str(s.get("seed")), str(s.get("run_id"))))
        grids: list[tuple[str, bytes]] = []
        seed = None
        samplers = list(dict.fromkeys(r.sampler for t in board.tables for r in t.rows if r.model == model and r.sampler))
        rank = {_safe(label): i for i, label in enumerate(samplers)}
        for s in done:  # the sample grids of the first seed that has any, in the leaderboard's sampler order
            pngs = sorted(Path(s["run_dir"], "samples").glob("*.png"), key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
            if pngs:
                names = {_safe(label): label for label in samplers}
                grids = [(names.get(p.stem, p.stem), p.read_bytes()) for p in pngs]
                seed = s.get("seed")
                break
        curves = {s.get("seed"): load_curves(s["run_dir"]) for s in done}
        png = plots.curves_png(curves) if curves else None
        views.append(ModelView(model, role, seed, grids, png, len(done)))
    return views


def _when(stamp: Any) -> str:
    """ISO timestamp -> "YYYY-MM-DD HH:MM:SS" (UTC as the runner writes it)."""
    text = str(stamp or "")
    return text.replace("T", " ").removesuffix("+00:00")


def _provenance(runset: RunSet, displays: dict[str, MetricDisplay], registry: Registry) -> dict[str, Any]:
    df = prepared(runset.frame) if not runset.frame.empty else runset.frame
    runs, data, versions, groups = [], {}, defaultdict(int), defaultdict(list)
    external_commands: set[str] = set()
    first_rows = df.drop_duplicates("run_id").set_index("run_id") if not df.empty else pd.DataFrame()
    for s in runset.statuses:
        rid = s.get("run_id", Path(s["run_dir"]).name)
        cfg = runset.configs.get(rid, {})
        ident = cfg.get("identity", {})
        row = first_rows.loc[rid] if rid in first_rows.index else None
        runs.append({"run_id": rid, "model": s.get("model"), "dataset": s.get("dataset"), "seed": s.get("seed"),
                     "preset": s.get("preset"), "device": row["device"] if row is not None else ident.get("device"),
                     "config_hash": s.get("config_hash") or cfg.get("config_hash"),
                     "timestamp": _when(row["timestamp"]) if row is not None else ""})
        if ident.get("external"):  # genbench eval: the command that scored the samples, not a genbench run
            data[(ident.get("dataset"), ident.get("split"), ident.get("data_hash"))] = 1
            if cfg.get("command"):
                external_commands.add(str(cfg["command"]))
        elif ident:
            data[(ident.get("dataset"), ident.get("split"), ident.get("data_hash"))] = 1
            key = (s.get("model"), s.get("dataset"), s.get("preset"), ident.get("device"),
                   json.dumps(ident.get("config", {}), sort_keys=True))
            groups[key].append(s.get("seed"))
        v = cfg.get("versions")
        if v is None and row is not None:
            try:
                v = json.loads(row["versions"])
            except (TypeError, ValueError):
                v = None
        if v:
            versions[json.dumps(v, sort_keys=True)] += 1
    commands = [run_command(m, d, seeds, p, json.loads(c), registry, dev) for (m, d, p, dev, c), seeds in sorted(groups.items(), key=str)]
    commands += sorted(external_commands)
    extractors = []
    if not df.empty:
        shown = board_displays(df, displays)
        featured = df["metric"].map(lambda m: shown[m].per_extractor or shown[m].floor_of is not None)
        ext = df[(df["extractor"] != "") & featured]
        for (ds, name, sha), g in ext.groupby(["dataset", "extractor", "extractor_sha256"], dropna=False):
            acc, dims = "", ""
            for d in g["details"]:
                try:
                    details = json.loads(d)
                except (TypeError, ValueError):
                    continue
                if not isinstance(details, dict):
                    continue
                if details.get("extractor_test_accuracy") is not None and not acc:
                    acc = f"{float(details['extractor_test_accuracy']):.4f}"
                if details.get("feature_dims") is not None and not dims:
                    dims = str(details["feature_dims"])
            extractors.append({"dataset": ds, "extractor": name, "sha256": "" if isinstance(sha, float) else sha,
                               "accuracy": acc, "dims": dims})
    return {
        "runs": runs, "commands": commands, "extractors": extractors,
        "data": [{"dataset": d, "split": s, "data_hash": h} for (d, s, h) in sorted(data, key=str)],
        "versions": [{**json.loads(k), "runs": n} for k, n in sorted(versions.items())],
    }


def _dataset_views(runset: RunSet, frame: pd.DataFrame, boards: dict[str, Board], baseline: str | None,
                   data_root: str | None, registry: Registry) -> list[DatasetView]:
    """``frame``: the rows the boards were built from (tiny runs left out unless asked for)."""
    df = prepared(frame, baseline) if not frame.empty else frame
    views = []
    for name, board in boards.items():
        sub = df[df["dataset"] == name]
        quality = next((t for t in board.tables if t.name == "quality"), None)
        ranked = {(r.model, r.sampler) for r in (quality.rows if quality else []) if r.role != "floor" and not r.apart}
        in_plot = pd.Series([(m, s) in ranked for m, s in zip(sub["model"], sub["sampler"])], index=sub.index, dtype=bool)
        sub = sub[in_plot | sub["metric"].str.endswith("_floor")]  # the cost plot shows the ranked rows only
        cost = []
        for extractor in sorted(sub.loc[sub["metric"] == FID, "extractor"].unique()):
            points = plots.cost_points(sub, extractor)
            if not points:
                continue
            fl = sub[(sub["metric"] == f"{FID}_floor") & (sub["extractor"] == extractor)]
            sizes = pd.to_numeric(fl["n"], errors="coerce")
            floors = [(None if sizes.nunique() <= 1 else int(n), float(g["value"].mean()))
                      for n, g in fl.assign(n=sizes.fillna(-1)).groupby("n")]
            cost.append((extractor, plots.quality_cost_png(points, floors, f"{name}: FID [{extractor}] against cost")))
        run_dirs = [s["run_dir"] for s in runset.done if s.get("dataset") == name and "run_dir" in s]
        grid, why = real_grid_png(name, registry, data_root=data_root, run_dirs=run_dirs)
        views.append(DatasetView(board, cost, grid, why, _model_views(board, runset, df)))
    return views


def write_report(reports_dir: str | Path = "reports", out_dir: str | Path | None = None,
                 models: list[str] | None = None, datasets: list[str] | None = None, runs: list[str] | None = None,
                 baseline: str | None = None, data_root: str | None = None, command: str | None = None, *,
                 registry: Registry, include_tiny: bool = False) -> Path:
    """Read ``reports_dir/runs`` (filtered by run ids, models, data sets; shell patterns allowed) and write
    index.html, results.csv (tidy rows), results.md, results.tex (leaderboards) and results.json into ``out_dir``
    (default ``reports_dir``).  Returns the path of index.html.

    Rows whose ``role`` is "baseline" are shown as the baseline; ``baseline`` names one more model to show so
    (runs written before rows carried a role).  ``registry``: the plugins whose metric displays, data sets and
    presets the report uses.  Runs of the ``tiny`` preset (smoke tests) stay out of the leaderboards unless
    ``include_tiny``; results.csv keeps every row.  results.csv and results.json also hold the derived rows
    (FID / floor, KID - floor, FID test - train; ``genbench.report.derived``) after the tidy rows.
    """
    reports_dir = Path(reports_dir)
    out = Path(out_dir) if out_dir else reports_dir
    runset = select_runs(reports_dir / "runs", runs=runs, models=models, datasets=datasets)
    displays = registry_displays(registry)
    boards = build_boards(runset.frame, displays, baseline, include_tiny=include_tiny)
    shown_frame, hidden = (runset.frame, 0) if include_tiny else drop_tiny(runset.frame)
    table_rows = with_derived_rows(runset.frame)
    prov = _provenance(runset, displays, registry)
    filters = {k: v for k, v in (("runs", runs), ("models", models), ("datasets", datasets)) if v}
    if include_tiny:
        filters["include_tiny"] = True
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    from genbench.report.tasks import load_task_rows, tasks_html, tasks_markdown

    task_frame = load_task_rows(s["run_dir"] for s in runset.statuses if s.get("run_dir"))
    if not include_tiny and not task_frame.empty:  # as the leaderboards: smoke-test runs only on request
        task_frame = task_frame[task_frame["preset"] != "tiny"]
    page = PageInputs(
        datasets=_dataset_views(runset, shown_frame, boards, baseline, data_root, registry), failed=runset.failed, runs=prov["runs"],
        commands=prov["commands"], versions=prov["versions"], extractors=prov["extractors"], data=prov["data"],
        report_command=command or f"genbench report --out {reports_dir}" + (f" --to {out_dir}" if out_dir else ""),
        generated=generated, filters=filters, n_done=len(runset.done), hidden_tiny=hidden,
        tasks_html=tasks_html(task_frame),
    )
    files = {
        "results.csv": results_csv(table_rows),
        "results.md": ("\n".join(to_markdown(b) for b in boards.values()) or "No finished runs.\n")
                      + (f"\n## Tasks\n\n{tasks_markdown(task_frame)}" if not task_frame.empty else ""),
        "results.tex": (f"% {' '.join(page.report_command.split())}\n" + "\n".join(to_latex(b) for b in boards.values())) if boards
                       else "% no finished runs\n",
        "results.json": results_json(table_rows, boards, runset.failed, prov["commands"], generated, filters),
        "index.html": render_page(page),
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
        os.chmod(out / name, 0o644)
    return out / "index.html"
