"""A grid's report as stamped result files: bench/results/<grid name>.md and .json.

    genbench run --config bench/grids/ddpm_standard.toml
    genbench report reports-bench/ddpm_standard
    python bench/collect.py bench/grids/ddpm_standard.toml

(``make bench`` does this for every grid.)  The grid's finished cells are then kept in bench/cells/ (bench/cells.py
save), so that the grid resumes on a machine that lost its run folders.  The Markdown is the report's results.md under the commands
that made it and the stamp (commit, recipe of every feature extractor in the rows); for a grid with
``sample_every``, the sample metrics along training follow (each run's curves.csv).  The JSON holds the
stamp, the resolved grid, the report's leaderboard and tidy rows, and the curves.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from genbench.grid import GridError, load_grid
from genbench.provenance import recipes_from_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, write  # noqa: E402

CURVE_METRICS = ("fid", "precision", "recall")


def sample_curves(out: Path) -> dict[str, list[dict]]:
    """run id -> the steps of its curves.csv that carry sample metrics (with the validation bits/dim of that step)."""
    curves = {}
    for path in sorted((out / "runs").glob("*/curves.csv")):
        df = pd.read_csv(path)
        cols = [c for c in df.columns if c.split(":")[0] in CURVE_METRICS and ":" in c]
        if not cols:
            continue
        keep = ["step", "seconds", *(["val_bits_per_dim"] if "val_bits_per_dim" in df.columns else []), *cols]
        merged = df[keep].groupby("step", as_index=False).first()
        merged = merged[merged[cols].notna().any(axis=1)]
        curves[path.parent.name] = json.loads(merged.to_json(orient="records"))
    return curves


def curves_markdown(curves: dict[str, list[dict]]) -> str:
    lines = ["", "## Sample metrics along training", "",
             "Every `sample_every` steps: `n_samples` per sampler (sampling seed 0) scored against the test split "
             "with the run's first extractor; seconds are training seconds.", ""]
    for run_id, points in curves.items():
        cols = [c for c in points[0] if c not in ("step", "seconds")]
        lines += [f"### {run_id}", "", "| step | train s | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
        for p in points:
            cells = ["" if p.get(c) is None or (isinstance(p[c], float) and math.isnan(p[c])) else f"{p[c]:.4g}" for c in cols]
            lines.append(f"| {p['step']} | {p['seconds']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def cell_commits(out: Path, run_ids: list[str]) -> dict[str, str]:
    """run id -> the commit of the code that finished the cell (its config.json; "unknown" for runs made before
    config.json recorded it)."""
    commits = {}
    for run_id in run_ids:
        try:
            commits[run_id] = json.loads((out / "runs" / run_id / "config.json").read_text()).get("commit") or "unknown"
        except (OSError, ValueError):
            commits[run_id] = "unknown"
    return commits


def commits_markdown(commits: dict[str, str]) -> str:
    """One line naming the commit each cell was made at (a grid run in parts spans commits)."""
    by_commit: dict[str, list[str]] = {}
    for run_id, commit in commits.items():
        by_commit.setdefault(commit, []).append(run_id)
    if not by_commit:
        return ""
    return "Cells made at: " + "; ".join(f"`{c}` ({', '.join(ids)})" for c, ids in sorted(by_commit.items())) + "."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", help="the grid file (bench/grids/NAME.toml)")
    ap.add_argument("--out", default=None, help="the folder `genbench run` wrote to (default: the grid's out)")
    ap.add_argument("--name", default=None, help="result file name (default: the grid file's stem)")
    ap.add_argument("--no-save", action="store_true", help="do not keep the finished cells in bench/cells/")
    ap.add_argument("--device", default="auto", help="the device the grid ran on (plans its run ids; default: auto)")
    args = ap.parse_args(argv)
    try:
        grid = load_grid(args.grid)
    except GridError as exc:
        raise SystemExit(str(exc)) from None
    out = Path(args.out or grid.out or "reports")
    name = args.name or Path(args.grid).stem
    try:
        report = json.loads((out / "results.json").read_text())
        board = (out / "results.md").read_text()
    except FileNotFoundError:
        raise SystemExit(f"no report in {out}: run `genbench run --config {args.grid}` and "
                         f"`genbench report {out}` first") from None
    rows = report.get("rows", [])
    commits = cell_commits(out, sorted({r["run_id"] for r in rows if r.get("run_id")}))
    curves = sample_curves(out)
    grid_path = Path(args.grid).resolve()
    shown = grid_path.relative_to(ROOT) if grid_path.is_relative_to(ROOT) else grid_path
    commands = [f"genbench run --config {shown}", f"genbench report {out}", f"python bench/collect.py {shown}"]
    r = grid.resolved()
    text = "\n".join([
        f"# {name}", "",
        "Made by: " + " && ".join(f"`{c}`" for c in commands), "",
        f"Grid: models {r['models']}, data sets {r['datasets']}, seeds {r['seeds']}, preset `{r['preset']}`, "
        f"overrides {r['common_overrides'] or '{}'} and per model {r['model_overrides'] or '{}'}.", "",
        commits_markdown(commits), "", board.rstrip(), curves_markdown(curves) if curves else "", ""])
    failed = report.get("failed", [])
    if failed:
        text += "\nFailed or unfinished cells: " + "; ".join(
            f"{f.get('model')} seed {f.get('seed')}: "
            + (f.get("error") or f"no error recorded (state {f.get('state', '?')}: still running or interrupted)")
            for f in failed) + "\n"
    result = {"commands": commands, "grid": r, "grid_source": grid.source, "leaderboard": report.get("leaderboard", []),
              "failed": failed, "curves": curves, "cell_commits": commits, "rows": rows}
    write(result, name, text, recipes_from_rows(rows))
    if not args.no_save:
        import cells  # bench/cells.py

        saved = cells.save(args.grid, device=args.device)
        print(f"kept {len(saved)} finished cell(s) in bench/cells/{Path(args.grid).stem}/ (python bench/cells.py restore "
              f"{shown} brings them back)", file=sys.stderr)


if __name__ == "__main__":
    main()
