"""The report's task section: a leaderboard per (data set, task, setting) and before/after grids per model.

Reads ``<run>/tasks/*/rows.json`` (``genbench.tasks.run``) of the selected runs.  One row per model (values
averaged over seeds; the seed count is shown); a model without the capability reads "not supported" with its
reason, never 0.  The reference row "truth" is what a perfect restoration scores: the classifier's accuracy on
the uncorrupted images (``class_agreement_floor``) and the FID of the originals (``restored_fid_floor``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from genbench.report.htmltext import esc, img, slug

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


def _fmt(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return fmt.format(value)


def task_boards(frame: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """(data set, task, setting) -> a table: one row per model (and "truth"), one column per metric."""
    boards: dict[tuple[str, str, str], pd.DataFrame] = {}
    if frame.empty:
        return boards
    for (dataset, task, mask), part in frame.groupby(["dataset", "task", "mask"], sort=True):
        table = []
        for model, rows in part.groupby("model", sort=True):
            sup = rows[rows["metric"] == "supported"]
            seeds = int(rows["seed"].nunique())
            if len(sup) and not float(sup["value"].max()):
                reason = json.loads(sup["details"].iloc[0]).get("reason", "")
                table.append({"model": model, "seeds": seeds, "note": f"not supported: {reason}",
                              **{m: None for m, _, _ in COLUMNS}})
                continue
            values = {m: _mean(rows, m) for m, _, _ in COLUMNS}
            table.append({"model": model, "seeds": seeds, "note": "", **values})
        truth = {m: _mean(part, FLOORS[m]) if m in FLOORS else None for m, _, _ in COLUMNS}
        if any(v is not None for v in truth.values()):
            table.append({"model": "truth (reference)", "seeds": None, "note": "the uncorrupted images", **truth})
        board = pd.DataFrame(table)
        key = board["class_agreement"].fillna(-1.0).where(board["model"] != "truth (reference)", 2.0)
        boards[(str(dataset), str(task), str(mask))] = board.loc[key.sort_values(ascending=False).index].reset_index(drop=True)
    return boards


def _mean(rows: pd.DataFrame, metric: str) -> float | None:
    vals = rows.loc[rows["metric"] == metric, "value"].dropna().astype(float)
    return float(vals.mean()) if len(vals) else None


def tasks_markdown(frame: pd.DataFrame) -> str:
    """The task leaderboards as Markdown tables ("" without task rows)."""
    out = []
    for (dataset, task, mask), board in task_boards(frame).items():
        out.append(f"### Task {task} ({mask}) — {dataset}\n")
        out.append("| model | " + " | ".join(t for _, t, _ in COLUMNS) + " |")
        out.append("|---|" + "---|" * len(COLUMNS))
        for _, r in board.iterrows():
            if r["note"].startswith("not supported"):
                cells = [r["note"]] + [""] * (len(COLUMNS) - 1)
            else:
                cells = [_fmt(r[m], f) for m, _, f in COLUMNS]
            out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def tasks_html(frame: pd.DataFrame) -> str:
    """The page's task section: leaderboards and before/after grids ("" without task rows)."""
    boards = task_boards(frame)
    if not boards:
        return ""
    parts = [f'<section id="{SECTION_ID}"><h2>Tasks: inpainting, outpainting, denoising, colourisation</h2>',
             '<p class="muted small">Restorations of test images from each cell\'s checkpoint (no retraining). '
             "Class agreement: share of restorations the data set's classifier labels with the original's label; "
             "the truth row is the classifier's accuracy on the uncorrupted images. PSNR over the unknown / known "
             "sub-pixels in [0,1] units (∞: exact). Grids: input (unknown region red), completions, truth.</p>"]
    for (dataset, task, mask), board in boards.items():
        parts.append(f'<h3 id="task-{slug(dataset)}-{slug(task)}-{slug(mask)}">{esc(task)} ({esc(mask)}) — '
                     f"{esc(dataset)}</h3>")
        parts.append("<table><thead><tr><th>model</th>" + "".join(f"<th>{esc(t)}</th>" for _, t, _ in COLUMNS)
                     + "</tr></thead><tbody>")
        for _, r in board.iterrows():
            if r["note"].startswith("not supported"):
                cells = f'<td colspan="{len(COLUMNS)}" class="muted">{esc(r["note"])}</td>'
            else:
                cells = "".join(f"<td>{esc(_fmt(r[m], f))}</td>" for m, _, f in COLUMNS)
            parts.append(f"<tr><td>{esc(r['model'])}</td>{cells}</tr>")
        parts.append("</tbody></table>")
        grids = frame[(frame["dataset"] == dataset) & (frame["task"] == task) & (frame["mask"] == mask)]
        shown = set()
        parts.append('<div class="grids">')
        for _, row in grids.drop_duplicates("run_id").iterrows():
            path = Path(str(row.get("_grid", "")))
            if row["model"] in shown or not path.is_file():
                continue
            shown.add(row["model"])
            picture = img(path.read_bytes(), f"{row['model']} {task}", "grid")
            parts.append(f"<figure>{picture}<figcaption>{esc(row['model'])} (seed {esc(row['seed'])})"
                         "</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)
