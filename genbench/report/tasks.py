"""The report's task section: a leaderboard per (data set, task, setting) and before/after grids per model.

Reads ``<run>/tasks/*/rows.json`` (``genbench.tasks.run``) of the selected runs.  One row per model (values
averaged over seeds; the seed count is shown); a model without the capability reads "not supported" with its
reason, never 0.  Every value carries its 95% interval where its rows recorded a standard error (one seed: 1.96
standard errors; several: ``genbench.report.intervals.seed_interval``, which combines the seeds' spread with each
run's own noise).  Two reference rows give the scale: "truth" is what a perfect restoration scores (the
classifier's accuracy on the uncorrupted images, ``class_agreement_floor``, and the FID of the originals,
``restored_fid_floor``); "nearest training image" is the retrieval reference of completion tasks
(``genbench.tasks.retrieval``: ``*_retrieval`` rows); "known part only" and "exact sampler, estimated" say how
ambiguous the known part is (``genbench.tasks.ambiguity``: a classifier shown only the known pixels).  Every row says over how many test images it was measured
(``images``: the first n of the test split); the references are measured on the same images as the models they
stand beside, so where cells restored different numbers of images (``--task-images``) each number gets its own
reference rows ("truth (reference, 50 images)"), never the reference of other images.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from genbench.report.formatting import METHOD_WORDS, fmt_value
from genbench.report.htmltext import esc, img, slug
from genbench.report.intervals import rows_cell

__all__ = ["SECTION_ID", "SECTION_TITLE", "load_task_rows", "task_boards", "tasks_html", "tasks_markdown"]

#: the anchor of the task section (the page's nav links to it) and its title there
SECTION_ID = "tasks"
SECTION_TITLE = "Tasks"

#: (metric, column title, format, higher is better)
COLUMNS = [
    ("class_agreement", "class agreement ↑", "{:.3f}"),
    ("psnr_unknown", "PSNR unknown (dB) ↑", "{:.2f}"),
    ("psnr_known", "PSNR known (dB) ↑", "{:.2f}"),
    ("restored_fid", "FID of restorations ↓", "{:.2f}"),
    ("diversity", "diversity (rms)", "{:.3f}"),
    ("seconds_per_image", "s / image ↓", "{:.3g}"),
    ("nfe", "NFE ↓", "{:.0f}"),
]
FLOORS = {"class_agreement": "class_agreement_floor", "restored_fid": "restored_fid_floor"}
#: the reference rows: (label, note, metric -> the rows' metric that holds its value)
TRUTH = "truth (reference)"
RETRIEVAL = "nearest training image (reference)"
REFERENCES = [
    (TRUTH, "the uncorrupted images", FLOORS),
    (RETRIEVAL, "unknown region copied from the training image nearest on the known pixels",
     {m: f"{m}_retrieval" for m in ("class_agreement", "psnr_unknown")}),
    ("known part only (reference)", "a classifier shown only the known pixels names the class (genbench.tasks."
     "ambiguity)", {"class_agreement": "class_agreement_known_only"}),
    ("exact sampler, estimated (reference)", "mean q(class | known pixels): about what a sampler of the true "
     "conditional keeps", {"class_agreement": "class_agreement_sampler_ceiling"}),
]
#: how the ± of the task tables is made (under every task table)
INTERVAL_NOTE = ("± is the half-width of a 95% interval: with " + METHOD_WORDS["normal"] + "; with "
                 + METHOD_WORDS["t"] + ". A value without ± has no recorded standard error.")


def load_task_rows(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Every task row of these run folders (empty frame when none)."""
    rows: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        for path in sorted(Path(run_dir).glob("tasks/*/rows.json")):
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            rows += [{**r, "_grid": str(path.with_name("grid.png"))} for r in found]
    return pd.DataFrame(rows)


def _fmt(value: Any, fmt: str, ci: Any = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if ci is not None and isinstance(ci, float) and math.isfinite(ci) and ci > 0:
        return fmt_value(float(value), ci)
    return fmt.format(value)


def _cell(board_row: pd.Series, metric: str, fmt: str) -> str:
    return _fmt(board_row[metric], fmt, board_row.get(f"{metric}_ci"))


def task_boards(frame: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """(data set, task, setting) -> a table: one row per model (and the references), one column per metric
    (its mean) and ``<metric>_ci`` (its 95% half-width, nan where no standard error was recorded)."""
    boards: dict[tuple[str, str, str], pd.DataFrame] = {}
    if frame.empty:
        return boards
    for (dataset, task, mask), part in frame.groupby(["dataset", "task", "mask"], sort=True):
        images = _images_by_run(part)
        table = []
        for model, rows in part.groupby("model", sort=True):
            sup = rows[rows["metric"] == "supported"]
            seeds = int(rows["seed"].nunique())
            if len(sup) and not float(sup["value"].max()):
                reason = json.loads(sup["details"].iloc[0]).get("reason", "")
                table.append({"model": model, "seeds": seeds, "images": None, "note": f"not supported: {reason}",
                              **{m: None for m, _, _ in COLUMNS}})
                continue
            counts = sorted({images[r] for r in rows["run_id"].unique() if images.get(r) is not None})
            table.append({"model": model, "seeds": seeds, "images": "/".join(map(str, counts)) or None, "note": "",
                          **_values(rows, {m: m for m, _, _ in COLUMNS})})
        references = []
        counts = sorted({n for n in images.values() if n is not None}) or [None]
        for n in counts:  # a reference per number of images: measured on the images its models restored
            same = part if n is None else part[part["run_id"].astype(str).map(images) == n]
            for label, note, metrics in REFERENCES:
                values = _values(same, metrics, by="dataset")  # the same images for every cell: one value
                if any(v is not None for k, v in values.items() if not k.endswith("_ci")):
                    shown = label if len(counts) == 1 else f"{label[:-1]}, {n} images)"
                    references.append({"model": shown, "seeds": None, "images": None if n is None else str(n),
                                       "note": note, **values})
        board = pd.DataFrame(table)
        if len(board):
            key = board["class_agreement"].astype(float).fillna(-1.0)
            board = board.loc[key.sort_values(ascending=False, kind="stable").index]
        boards[(str(dataset), str(task), str(mask))] = pd.concat([pd.DataFrame(references), board],
                                                                 ignore_index=True)
    return boards


def _images_by_run(part: pd.DataFrame) -> dict[str, int | None]:
    """run id -> the number of test images its task restored (the ``n`` of its "supported" row; None where the
    rows do not say, or the model does not support the task: ``evaluate_task`` writes n = 0 then)."""
    out: dict[str, int | None] = {}
    for run_id, rows in part.groupby("run_id", sort=True):
        sup = rows[rows["metric"] == "supported"]
        n = pd.to_numeric(sup["n"], errors="coerce").max() if "n" in sup else None
        out[str(run_id)] = int(n) if n is not None and n > 0 else None  # NaN > 0 is False
    return out


def _values(rows: pd.DataFrame, metrics: dict[str, str], by: str = "run_id") -> dict[str, Any]:
    """column -> mean of the rows of ``metrics[column]`` (one value per ``by``) and ``<column>_ci``."""
    out: dict[str, Any] = {}
    for column, _, _ in COLUMNS:
        metric = metrics.get(column)
        sel = rows[rows["metric"] == metric] if metric else rows.iloc[0:0]
        sel = sel[pd.to_numeric(sel["value"], errors="coerce").notna()]
        if sel.empty:
            out[column], out[f"{column}_ci"] = None, float("nan")
            continue
        if by == "dataset":  # a reference: the same images in every cell of a seed, so one measurement per seed
            sel = sel.drop_duplicates("seed").drop_duplicates("value")  # and one in all where the mask is fixed
        values = pd.to_numeric(sel["value"], errors="coerce")
        if values.map(math.isinf).any():
            out[column], out[f"{column}_ci"] = float(values.mean()), float("nan")
            continue
        cell = rows_cell(sel.assign(value=values), by="run_id" if "run_id" in sel else "seed")
        out[column], out[f"{column}_ci"] = cell.mean, cell.ci
    return out


def _images(board_row: pd.Series) -> str:
    value = board_row.get("images")
    return "" if pd.isna(value) else str(value)


def tasks_markdown(frame: pd.DataFrame) -> str:
    """The task leaderboards as Markdown tables ("" without task rows)."""
    out = []
    for (dataset, task, mask), board in task_boards(frame).items():
        out.append(f"### Task {task} ({mask}) — {dataset}\n")
        out.append("| model | images | " + " | ".join(t for _, t, _ in COLUMNS) + " |")
        out.append("|---|--:|" + "---|" * len(COLUMNS))
        for _, r in board.iterrows():
            if r["note"].startswith("not supported"):
                cells = [r["note"]] + [""] * (len(COLUMNS) - 1)
            else:
                cells = [_cell(r, m, f) for m, _, f in COLUMNS]
            out.append(f"| {r['model']} | {_images(r)} | " + " | ".join(cells) + " |")
        out.append("")
        out.append(INTERVAL_NOTE + "\n")
    return "\n".join(out)


def tasks_html(frame: pd.DataFrame) -> str:
    """The page's task section: leaderboards and before/after grids ("" without task rows)."""
    boards = task_boards(frame)
    if not boards:
        return ""
    parts = [f'<section id="{SECTION_ID}"><h2>Tasks: inpainting, outpainting, denoising, colourisation</h2>',
             '<p class="muted small">Restorations of test images from each cell\'s checkpoint (no retraining). '
             "Class agreement: share of restorations the data set's classifier labels with the original's label; "
             "the truth row is the classifier's accuracy on the uncorrupted images; the nearest-training-image row fills the "
             "unknown region from the training image closest on the known pixels (a lookup table to beat). PSNR over the unknown / known "
             "sub-pixels in [0,1] units (∞: exact). Grids: input (unknown region red), completions, truth.</p>"]
    for (dataset, task, mask), board in boards.items():
        parts.append(f'<h3 id="task-{slug(dataset)}-{slug(task)}-{slug(mask)}">{esc(task)} ({esc(mask)}) — '
                     f"{esc(dataset)}</h3>")
        parts.append("<table><thead><tr><th>model</th><th>images</th>" + "".join(f"<th>{esc(t)}</th>" for _, t, _ in COLUMNS)
                     + "</tr></thead><tbody>")
        for _, r in board.iterrows():
            if r["note"].startswith("not supported"):
                cells = f'<td colspan="{len(COLUMNS)}" class="muted">{esc(r["note"])}</td>'
            else:
                cells = "".join(f"<td>{esc(_cell(r, m, f))}</td>" for m, _, f in COLUMNS)
            parts.append(f"<tr><td>{esc(r['model'])}</td><td>{esc(_images(r))}</td>{cells}</tr>")
        parts.append(f'</tbody></table><p class="muted small">{esc(INTERVAL_NOTE)}</p>')
        grids = frame[(frame["dataset"] == dataset) & (frame["task"] == task) & (frame["mask"] == mask)]
        shown = set()
        parts.append('<div class="grids">')
        for _, row in grids.drop_duplicates("run_id").iterrows():
            path = Path(str(row.get("_grid", "")))
            if row["model"] in shown or not path.is_file():
                continue
            shown.add(row["model"])
            picture = img(path.read_bytes(), f"{row['model']} {task}", "grid", 1.0)  # drawn at >= 3x (run.grid_png)
            parts.append(f"<figure>{picture}<figcaption>{esc(row['model'])} (seed {esc(row['seed'])})"
                         "</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)
