"""The self-contained HTML page: inline CSS, images as data URIs, no script, no font, no network.

Every string that comes from a run (model, data set, sampler, extractor, config,
error message) goes through :func:`esc`; the page's Content-Security-Policy forbids
any fetch besides ``data:`` images, so even a missed escape could not load anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from genbench.report.cells import Board
from genbench.report.formatting import MISSING
from genbench.report.htmltext import esc, img, slug
from genbench.report.page_board import board_html

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#d9dce1;--head:#f3f4f6;--best:#dff3e4;--tied:#eef3fb;--ref:#f7f7fa;--bad:#b00020}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
 margin:0 auto;max-width:1360px;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.55rem;margin:.2rem 0 .3rem}h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.2rem;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}h4{font-size:.95rem;margin:1rem 0 .3rem}
p{margin:.4rem 0}.muted{color:var(--muted)}.small{font-size:.82rem}
nav{font-size:.85rem;color:var(--muted);margin:.5rem 0 1rem}nav a{margin-right:.9rem;color:#1a56b0;text-decoration:none}
.scroll{overflow-x:auto;margin:.4rem 0 1rem}
table{border-collapse:collapse;font-size:.82rem;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;font-size:.92rem;padding:.2rem 0 .35rem}
th,td{border:1px solid var(--line);padding:.26rem .45rem;vertical-align:top}
thead th{background:var(--head);font-weight:600;text-align:center;vertical-align:bottom;min-width:3.8rem}
td.num{text-align:right;white-space:nowrap}td.name{font-weight:600;max-width:13rem;overflow-wrap:break-word}
td.sampler{max-width:11rem;overflow-wrap:break-word}
td.best{background:var(--best);font-weight:700}td.best::after{content:" ★";color:#1e7b34;font-weight:400}
td.tied{background:var(--tied)}td.tied::after{content:" ≈";color:#5f6368}
tbody.apart td{color:#4a4f55}td.apart-head{background:var(--head);font-size:.75rem;font-style:italic;color:var(--muted)}
.tag.setting{background:#fff4d6;color:#6b4e00}.tag.flag{background:#fdecee;color:var(--bad)}
p.caption{margin:-.6rem 0 1rem;max-width:60rem}
td.invalid{color:var(--bad);font-weight:700}
tbody.ref td{background:var(--ref);font-style:italic}tbody.ref td.best{background:var(--best)}
tbody.ref tr:first-child td{border-top:2px solid #9aa0a6}
.tag{display:inline-block;font-size:.7rem;font-style:normal;font-weight:600;padding:0 .35rem;border-radius:3px;background:#e8eaed;color:#3c4043;margin-left:.35rem}
.warn{border-left:4px solid var(--bad);background:#fdecee;padding:.5rem .8rem;margin:.6rem 0}
.model{break-inside:avoid;page-break-inside:avoid;border-top:1px solid var(--line);padding-top:.3rem}
h2+.model,h2+p+.model{border-top:0}
.grids{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{margin:0}figcaption{font-size:.78rem;color:var(--muted);max-width:320px;overflow-wrap:anywhere}
img.grid{image-rendering:pixelated;image-rendering:crisp-edges;width:240px;height:auto;border:1px solid #bbb;display:block}
img.plot{max-width:100%;height:auto;display:block}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid var(--line);padding:.5rem .7rem;white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0}
td.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.75rem;overflow-wrap:anywhere;max-width:34rem}
td.nowrap{white-space:nowrap}
td.error{color:var(--bad);overflow-wrap:anywhere;max-width:48rem}
details summary{cursor:default;color:var(--muted);font-size:.85rem}
@media (max-width:800px){body{padding:1rem .6rem}img.grid{width:180px}}
@media print{
 body{max-width:none;padding:0;font-size:10pt}nav,.noprint{display:none}
 h2{break-after:avoid;page-break-after:avoid}table,figure,img{break-inside:avoid;page-break-inside:avoid}
 .scroll{overflow:visible}table{font-size:7pt}th,td{padding:.1rem .2rem}thead th{min-width:0}
 td.name,td.sampler{white-space:normal;overflow-wrap:anywhere;max-width:9rem}td.best::after,td.tied::after{content:""}
 td.hash{font-size:6.5pt}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 a{color:inherit;text-decoration:none}
}
"""


@dataclass
class ModelView:
    """What the per-model section shows for one (data set, model)."""

    model: str
    role: str
    seed: Any
    sample_grids: list[tuple[str, bytes]]  # (sampler label, png)
    curves_png: bytes | None
    runs: int = 0


@dataclass
class DatasetView:
    board: Board
    cost_plots: list[tuple[str, bytes]]  # (extractor, png)
    real_grid: bytes | None
    real_grid_reason: str
    models: list[ModelView]


@dataclass
class PageInputs:
    datasets: list[DatasetView]
    failed: list[dict[str, Any]]
    runs: list[dict[str, Any]]  # provenance rows
    commands: list[str]
    versions: list[dict[str, Any]]
    extractors: list[dict[str, Any]]
    data: list[dict[str, Any]]
    report_command: str
    generated: str
    filters: dict[str, Any] = field(default_factory=dict)
    n_done: int = 0
    hidden_tiny: int = 0  # runs of the tiny preset left out of the leaderboards
    tasks_html: str = ""  # the restoration tasks' section (report/tasks.py), "" without task rows


#: sample and real-image grids are drawn at this multiple of their native size (nearest-neighbour): a 28x28
#: garment at 84 px, an 8x8 digit at 24 px
GRID_SCALE = 3


def _models_html(view: DatasetView) -> str:
    ds = esc(view.board.dataset)
    parts = [f'<section id="models-{slug(view.board.dataset)}"><h2>Models — {ds}</h2>']
    if view.real_grid is None:
        parts.append(f'<p class="muted small">Real test images are not shown: {esc(view.real_grid_reason)}</p>')
    for m in view.models:
        tag = f'<span class="tag">{m.role}</span>' if m.role in ("baseline", "external") else ""
        parts.append(f'<div class="model"><h3>{esc(m.model)}{tag}</h3>')
        parts.append('<div class="grids">')
        if not m.sample_grids:
            parts.append('<p class="muted small">No sample grid stored.</p>')
        for label, png in m.sample_grids:
            parts.append(f"<figure>{img(png, f'samples of {m.model} ({label}) on {view.board.dataset}', 'grid', GRID_SCALE)}"
                         f"<figcaption>samples · {esc(label)} · seed {esc(m.seed)}</figcaption></figure>")
        if view.real_grid is not None:
            parts.append(f"<figure>{img(view.real_grid, f'real test images of {view.board.dataset}', 'grid', GRID_SCALE)}"
                         f"<figcaption>real test images · {ds}</figcaption></figure>")
        parts.append("</div>")
        if m.curves_png is not None:
            parts.append(f"<figure>{img(m.curves_png, f'training curves of {m.model} on {view.board.dataset}', 'plot')}"
                         f"<figcaption>training curves, {m.runs} run(s)</figcaption></figure>")
        else:
            parts.append('<p class="muted small">No training curves stored.</p>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _simple_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], classes: dict[str, str] | None = None,
                  caption: str = "") -> str:
    classes = classes or {}
    head = "".join(f"<th>{esc(title)}</th>" for _, title in columns)
    body = []
    for r in rows:
        tds = []
        for key, _ in columns:
            v = r.get(key, "")
            cls = f' class="{classes[key]}"' if key in classes else ""
            tds.append(f"<td{cls}>{esc(v) if v not in (None, '') else MISSING}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _failed_html(failed: list[dict[str, Any]]) -> str:
    parts = ['<section id="failed"><h2>Failed cells</h2>']
    if not failed:
        parts.append('<p class="muted">None: every selected cell finished.</p></section>')
        return "\n".join(parts)
    parts.append(f"<p>{len(failed)} cell(s) did not finish; their error's first line:</p>")
    rows = [{**f, "error": str(f.get("error") or "(no error recorded: the cell is still running or was interrupted)").splitlines()[0][:400]}
            for f in failed]
    parts.append(_simple_table(rows, [("run_id", "run"), ("model", "model"), ("dataset", "data set"), ("seed", "seed"),
                                      ("preset", "preset"), ("state", "state"), ("error", "error")],
                               {"error": "error", "run_id": "hash"}))
    parts.append("</section>")
    return "\n".join(parts)


def _provenance_html(p: PageInputs) -> str:
    parts = ['<section id="provenance"><h2>Provenance</h2>']
    parts.append(f'<p class="small">Report written {esc(p.generated)} by <code>{esc(p.report_command)}</code>'
                 + (f"; filters: {esc(json.dumps(p.filters, sort_keys=True))}" if p.filters else "") + ".</p>")
    devices: dict[str, int] = {}
    for r in p.runs:
        if r.get("device"):
            devices[str(r["device"])] = devices.get(str(r["device"]), 0) + 1
    if devices:
        parts.append("<p class='small'>Devices: " + "; ".join(f"{esc(d)} ({n} run{'s' if n > 1 else ''})"
                                                          for d, n in sorted(devices.items())) + ".</p>")
    if p.versions:
        keys = sorted({k for v in p.versions for k in v if k != "runs"})
        parts.append(_simple_table(p.versions, [(k, k) for k in keys] + [("runs", "runs")], caption="Software versions"))
    if p.data:
        parts.append(_simple_table(p.data, [("dataset", "data set"), ("split", "split"), ("data_hash", "data sha256")],
                                   {"data_hash": "hash", "split": "hash"}, caption="Data"))
    if p.extractors:
        parts.append(_simple_table(p.extractors, [("dataset", "data set"), ("extractor", "feature extractor"),
                                                  ("sha256", "weights sha256"), ("dims", "feature dims"),
                                                  ("accuracy", "classifier test accuracy")],
                                   {"sha256": "hash"}, caption="Feature extractors"))
    if p.commands:
        parts.append("<h4>Commands that reproduce the runs</h4><pre>" + "\n".join(esc(c) for c in p.commands) + "</pre>")
    if p.runs:
        parts.append("<details open><summary>Every run</summary>" + _simple_table(
            p.runs, [("run_id", "run"), ("model", "model"), ("dataset", "data set"), ("seed", "seed"),
                     ("preset", "preset"), ("device", "device"), ("config_hash", "config sha256"),
                     ("timestamp", "finished (UTC)")],
            {"config_hash": "hash", "run_id": "hash", "timestamp": "nowrap"}) + "</details>")
    parts.append("</section>")
    return "\n".join(parts)


def render_page(p: PageInputs) -> str:
    """The whole page as one string."""
    nav = ['<nav class="noprint">']
    for v in p.datasets:
        nav.append(f'<a href="#board-{slug(v.board.dataset)}">Leaderboard — {esc(v.board.dataset)}</a>')
        nav.append(f'<a href="#models-{slug(v.board.dataset)}">Models — {esc(v.board.dataset)}</a>')
    if p.tasks_html:  # the task section (genbench.report.tasks) when the runs have task rows
        from genbench.report.tasks import SECTION_ID, SECTION_TITLE

        nav.append(f'<a href="#{SECTION_ID}">{esc(SECTION_TITLE)}</a>')
    nav.append('<a href="#failed">Failed cells</a><a href="#provenance">Provenance</a></nav>')
    summary = (f"{p.n_done} finished cell(s) on {len(p.datasets)} data set(s); {len(p.failed)} failed or unfinished."
               + (f" {p.hidden_tiny} run(s) of the tiny preset (smoke tests) are left out of the leaderboards; "
                  "add them with `genbench report --include-tiny`." if p.hidden_tiny else ""))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>genbench report</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>genbench report</h1>",
        f'<p class="muted">{esc(summary)}</p></header>',
        "".join(nav),
    ]
    if not p.datasets:
        parts.append('<p class="warn">No finished runs match the filters.</p>')
    for v in p.datasets:
        parts.append(board_html(v))
    for v in p.datasets:
        parts.append(_models_html(v))
    if p.tasks_html:
        parts.append(p.tasks_html)
    parts.append(_failed_html(p.failed))
    parts.append(_provenance_html(p))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["CSP", "DatasetView", "ModelView", "PageInputs", "esc", "render_page"]
