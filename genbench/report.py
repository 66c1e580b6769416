"""Tidy rows -> leaderboard (mean ± 95% CI over seeds) -> self-contained HTML, CSV, Markdown, LaTeX, JSON."""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genbench.io import atomic_write_text
from genbench.results import load_runs

# metric -> (column title, higher is better); metrics not listed appear under their own name
TITLES = {
    "fid": "FID",
    "bits_per_dim": "bits/dim",
    "val_bits_per_dim": "val bits/dim",
    "images_per_second": "images/s",
    "latency": "s/image (batch 1)",
    "nfe": "NFE",
    "flops_per_image": "FLOPs/image",
    "confident_share": "confident share",
    "class_entropy": "class entropy (bits)",
    "min_class_share": "rarest class share",
    "train_seconds": "train s",
    "parameters": "parameters",
}
LEADERBOARD_METRICS = list(TITLES)
MISSING = "—"


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan for one value)."""
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def column_name(metric: str, kind: Any, extractor: Any) -> str:
    title = TITLES.get(metric, metric)
    if isinstance(kind, str) and kind:
        title += f" ({kind})"
    if isinstance(extractor, str) and extractor and metric == "fid":
        title += f" [{extractor}]"
    return title


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """(dataset, model, sampler) x metric columns of "mean ± ci" strings; cells without data are "—".

    Metrics measured once per model (bits/dim, training) are shown on each of the model's sampler rows.
    """
    if frame.empty:
        return pd.DataFrame()
    df = frame[frame["metric"].isin(LEADERBOARD_METRICS)].copy()
    df["sampler"] = df["sampler"].fillna("")
    df["column"] = [column_name(m, k, e) for m, k, e in zip(df["metric"], df["kind"], df["extractor"])]
    stats_rows = []
    for (dataset, model, sampler, column), g in df.groupby(["dataset", "model", "sampler", "column"], sort=True):
        v = g["value"].to_numpy(dtype=float)
        stats_rows.append({"dataset": dataset, "model": model, "sampler": sampler, "column": column,
                           "mean": float(np.nanmean(v)), "ci": ci95(v), "seeds": g["seed"].nunique(),
                           "higher": g["higher_is_better"].iloc[0]})
    stats = pd.DataFrame(stats_rows)
    keyed = stats[stats["sampler"] != ""]
    shared = stats[stats["sampler"] == ""]
    keys = keyed[["dataset", "model", "sampler"]].drop_duplicates()
    models_without = shared[["dataset", "model"]].drop_duplicates().merge(keys[["dataset", "model"]].drop_duplicates(), how="left", indicator=True)
    keys = pd.concat([keys, models_without[models_without["_merge"] == "left_only"][["dataset", "model"]].assign(sampler="")])
    expanded = pd.concat([keyed, keys.merge(shared.drop(columns="sampler"), on=["dataset", "model"])])
    return expanded


def _fmt(mean: float, ci: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    digits = 4 if abs(mean) < 10 else 1
    text = f"{mean:.{digits}g}" if abs(mean) >= 1e5 else f"{mean:.{digits}f}" if abs(mean) < 10 else f"{mean:,.1f}"
    if not math.isnan(ci):
        text += f" ± {ci:.2g}"
    return text


def leaderboard_tables(frame: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]:
    """Per data set: (display strings, numeric means, column -> higher_is_better)."""
    stats = leaderboard(frame)
    out = {}
    if stats.empty:
        return out
    for dataset, g in stats.groupby("dataset"):
        means = g.pivot_table(index=["model", "sampler"], columns="column", values="mean", aggfunc="first")
        cis = g.pivot_table(index=["model", "sampler"], columns="column", values="ci", aggfunc="first").reindex_like(means)
        higher = g.drop_duplicates("column").set_index("column")["higher"].to_dict()
        order = [c for m in LEADERBOARD_METRICS for c in means.columns if c.startswith(TITLES[m]) and c not in []]
        order = list(dict.fromkeys(order + list(means.columns)))
        means, cis = means[order], cis[order]
        shown = means.copy().astype(object)
        for c in means.columns:
            shown[c] = [_fmt(m, s) for m, s in zip(means[c], cis[c])]
        out[str(dataset)] = (shown, means, higher)
    return out


def floors(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame[frame["metric"] == "fid_floor"]
    if f.empty:
        return pd.DataFrame()
    return f.groupby(["dataset", "extractor", "n"], as_index=False)["value"].mean().rename(columns={"value": "floor"})


def _style(shown: pd.DataFrame, means: pd.DataFrame, higher: dict[str, Any]) -> str:
    arrows = {c: (" ↑" if higher.get(c) is True else " ↓" if higher.get(c) is False else "") for c in shown.columns}

    def mark_best(col: pd.Series) -> list[str]:
        m = means[col.name]
        hib = higher.get(col.name)
        if hib not in (True, False) or m.notna().sum() < 2:
            return [""] * len(col)
        best = m.max() if hib else m.min()
        return ["font-weight:bold;background:#e6f4ea" if v == best else "" for v in m]

    styler = shown.style.apply(mark_best, axis=0).format(escape="html").format_index(escape="html", axis=0)
    styler = styler.format_index(lambda c: html.escape(str(c)) + arrows.get(c, ""), axis=1)
    return styler.set_table_attributes('class="board"').to_html()


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f5f5f7}td:first-child,th:first-child{text-align:left}
.grids{display:flex;flex-wrap:wrap;gap:1rem}.grids figure{margin:0}.grids img{image-rendering:pixelated;width:220px;border:1px solid #ccc}
.fail{color:#b00020}.small{color:#666;font-size:.8rem}
@media print{body{margin:0;max-width:none}}
"""


def render_html(frame: pd.DataFrame, statuses: list[dict[str, Any]]) -> str:
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>genbench report</title>",
             f"<style>{CSS}</style></head><body><h1>genbench report</h1>"]
    done = [s for s in statuses if s.get("state") == "done"]
    failed = [s for s in statuses if s.get("state") != "done"]
    parts.append(f"<p class='small'>{len(done)} finished cells, {len(failed)} failed or unfinished. "
                 "Mean ± 95% CI over seeds; ↑/↓ higher/lower is better; best value per column in bold; "
                 f"{MISSING} where a model lacks the capability.</p>")
    fl = floors(frame)
    for dataset, (shown, means, higher) in leaderboard_tables(frame).items():
        parts.append(f"<h2>Leaderboard: {esc(dataset)}</h2>")
        parts.append(_style(shown, means, higher))
        sub = fl[fl["dataset"] == dataset] if not fl.empty else fl
        if not sub.empty:
            parts.append("<p>Real-data floor (real images outside the test split vs the test split): "
                         + "; ".join(f"FID [{esc(str(r.extractor))}] = {r.floor:.3f} at n={int(r.n)}" for r in sub.itertuples())
                         + "</p>")
    if done:
        parts.append("<h2>Samples</h2><div class='grids'>")
        for s in done:
            for png in sorted(Path(s["run_dir"], "samples").glob("*.png")):
                parts.append(f"<figure>{_img(png)}<figcaption>{esc(s['model'])} · {esc(s['dataset'])} · seed {s['seed']} · "
                             f"{esc(png.stem)}</figcaption></figure>")
        parts.append("</div>")
    if failed:
        parts.append("<h2>Failed cells</h2><table><tr><th>run</th><th>state</th><th>error</th></tr>")
        for s in failed:
            parts.append(f"<tr><td>{esc(s.get('run_id', ''))}</td><td>{esc(s.get('state', ''))}</td>"
                         f"<td class='fail'>{esc(s.get('error', ''))}</td></tr>")
        parts.append("</table>")
    if not frame.empty:
        prov = frame.drop_duplicates("run_id")[["run_id", "model", "dataset", "seed", "preset", "config_hash", "device", "versions", "split"]]
        parts.append("<h2>Provenance</h2>")
        parts.append(prov.style.format(escape="html").hide(axis="index").to_html())
        ext = frame[frame["extractor"].fillna("") != ""].drop_duplicates(["dataset", "extractor", "extractor_sha256"])
        if not ext.empty:
            parts.append("<p class='small'>Feature extractors: " + "; ".join(
                f"{esc(str(r.dataset))}: {esc(str(r.extractor))} sha256 {esc(str(r.extractor_sha256))[:16]}…" for r in ext.itertuples()) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_markdown(shown: pd.DataFrame) -> str:
    flat = shown.reset_index()
    header = "| " + " | ".join(map(str, flat.columns)) + " |"
    sep = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in flat.itertuples(index=False)]
    return "\n".join([header, sep, *body]) + "\n"


def write_report(reports_dir: str | Path = "reports", out_dir: str | Path | None = None,
                 models: list[str] | None = None, datasets: list[str] | None = None) -> Path:
    """Read ``reports_dir/runs`` and write index.html, results.csv, results.md, results.tex, results.json."""
    reports_dir = Path(reports_dir)
    out = Path(out_dir) if out_dir else reports_dir
    frame, statuses = load_runs(reports_dir / "runs")
    if models:
        frame = frame[frame["model"].isin(models)]
        statuses = [s for s in statuses if s.get("model") in models]
    if datasets:
        frame = frame[frame["dataset"].isin(datasets)]
        statuses = [s for s in statuses if s.get("dataset") in datasets]
    atomic_write_text(out / "results.csv", frame.to_csv(index=False))
    atomic_write_text(out / "results.json", frame.to_json(orient="records", indent=1))
    md, tex = [], []
    for dataset, (shown, _, _) in leaderboard_tables(frame).items():
        md.append(f"### {dataset}\n\n{to_markdown(shown)}")
        tex.append(f"% {dataset}\n" + shown.style.to_latex(hrules=True))
    atomic_write_text(out / "results.md", "\n".join(md))
    atomic_write_text(out / "results.tex", "\n".join(tex))
    index = out / "index.html"
    atomic_write_text(index, render_html(frame, statuses))
    return index
