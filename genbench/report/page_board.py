"""The leaderboard section of the page: the legend, how to read a tie, flags, one HTML table per board table.

Cells carry their mark as a class ("best" ★, "tied" ≈) and say in their tooltip how their interval was
made; rows measured in another setting sit in their own ``tbody.apart`` under a line that says they are not
ranked.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from genbench.metrics.display import BITS_PER_DIM
from genbench.report.cells import Row, Table
from genbench.report.formatting import (APART_SENTENCE, MISSING, TIE_SENTENCE, arrow, cell_text, direction_words,
                                        interval_caption, interval_note)
from genbench.report.htmltext import esc, img, slug
from genbench.report.memorisation import flag_sentence

if TYPE_CHECKING:
    from genbench.report.page import DatasetView

MARK_WORDS = {"best": "best: its 95% interval does not overlap the runner-up's",
              "tied": "tied with the best: the 95% intervals overlap, so the data do not separate them"}


def _name_cell(row: Row, span: str) -> str:
    tags = ('<span class="tag">baseline</span>' if row.role == "baseline" else
            '<span class="tag" title="samples made elsewhere, scored by genbench eval">external</span>'
            if row.role == "external" else
            '<span class="tag">reference</span>' if row.role == "floor" else "")
    if row.tag:
        tags += f'<span class="tag setting" title="measured in another setting: not ranked">{esc(row.tag)}</span>'
    if row.flag:
        tags += f'<span class="tag flag">⚠ {esc(row.flag)}</span>'
    return f'<td class="name"{span}>{esc(row.model)}{tags}</td>'


def _table_html(t: Table) -> str:
    with_sampler = any(r.sampler for r in t.rows)
    head = "<th>model</th>" + ("<th>sampler</th>" if with_sampler else "") + "<th>seeds</th>"
    for c in t.columns:
        direction = direction_words(c)
        unit = (f"; unit: {c.unit}" if c.unit else "") + (f"; n = {c.n}" if c.n else "")
        head += f'<th title="{esc(c.metric)}: {direction}{esc(unit)}">{esc(c.title)}{esc(arrow(c))}</th>'
    n_cols = 2 + with_sampler + len(t.columns)
    # group consecutive rows of one model so per-model cells span the model's sampler rows
    spans: dict[int, int] = {}
    same = lambda a, b: (a.model, a.role, a.apart) == (b.model, b.role, b.apart)  # noqa: E731
    r = 0
    while r < len(t.rows):
        k = r
        while k + 1 < len(t.rows) and same(t.rows[k + 1], t.rows[r]):
            k += 1
        spans[r] = k - r + 1
        r = k + 1
    bodies: dict[str, list[str]] = {"main": [], "apart": [], "ref": []}
    for r, row in enumerate(t.rows):
        cells = []
        first = r in spans
        if first:
            span = f' rowspan="{spans[r]}"' if spans[r] > 1 else ""
            cells.append(_name_cell(row, span))
        if with_sampler:
            cells.append(f'<td class="sampler">{esc(row.sampler) or ("" if row.role == "floor" else MISSING)}</td>')
        if first:
            cells.append(f'<td class="num"{span}>{row.seeds or ""}</td>')
        for c, col in enumerate(t.columns):
            if col.per_model and not first:
                continue
            span = f' rowspan="{spans[r]}"' if col.per_model and spans.get(r, 1) > 1 else ""
            cell = t.cell(r, c)
            if cell is None:
                cells.append(f'<td class="num missing"{span} title="not measured for this model">{MISSING}</td>')
                continue
            cls = "num" + (" invalid" if cell.invalid else f" {cell.mark}" if cell.mark else "")
            title = cell.note or interval_note(cell)
            if cell.mark:
                title += "; " + MARK_WORDS[cell.mark]
            text = esc(cell_text(cell, col.scale))
            if cell.invalid:
                text += " ⚠ invalid"
            cells.append(f'<td class="{cls}"{span} title="{esc(title)}">{text}</td>')
        body = "ref" if row.role == "floor" or (row.role == "baseline" and not row.apart) else "apart" if row.apart else "main"
        bodies[body].append("<tr>" + "".join(cells) + "</tr>")
    setting = f' <span class="muted small">({esc(t.setting)})</span>' if t.setting else ""
    out = [f'<div class="scroll"><table class="board" data-table="{esc(t.name)}"><caption>{esc(t.title)}{setting}</caption>',
           f"<thead><tr>{head}</tr></thead>"]
    if bodies["main"]:
        out.append('<tbody class="models">' + "".join(bodies["main"]) + "</tbody>")
    if bodies["ref"]:
        out.append('<tbody class="ref">' + "".join(bodies["ref"]) + "</tbody>")
    if bodies["apart"]:
        out.append(f'<tbody class="apart"><tr><td class="apart-head" colspan="{n_cols}">Not ranked: measured in another '
                   f"setting than the rows above (the tag says how)</td></tr>" + "".join(bodies["apart"]) + "</tbody>")
    out.append("</table></div>")
    out.append(f'<p class="muted small caption">{esc(interval_caption(t))}</p>')
    return "\n".join(out)


MEMO_NOTE = ("Memorisation: exact copies are samples identical to a training image at the data's levels; "
             "\"closer than p5\" is the share of samples nearer to their nearest training image than the 5th percentile "
             "of the same distance for real test images (about 0.05 for a model that does not copy); FID vs train next "
             "to FID vs test: a model much closer to the training split than to the test split has learnt its training "
             "images rather than their distribution.")


def board_html(view: DatasetView) -> str:
    b = view.board
    ds = esc(b.dataset)
    parts = [f'<section id="board-{slug(b.dataset)}"><h2>Leaderboard — {ds}</h2>',
             '<p class="muted small legend">± is the half-width of a 95% interval (each table says how it was made); '
             "↑ higher is better, ↓ lower is better; ★ best: its interval does not overlap the runner-up's; "
             "≈ tied: its interval overlaps the best's, so the data do not separate them; "
             f"{MISSING} where a model lacks the capability. Reference rows: the per-pixel baseline and the real data "
             "(FID floor: real images outside the test split against the test split"
             + ("; bits/dim: the true entropy of the data, which no model may go below" if b.entropy is not None else "")
             + "). FID / floor near 1 means as close to the test images as other real images are.</p>",
             f'<p class="small tie">{esc(TIE_SENTENCE)}'
             + (f" {esc(APART_SENTENCE)}" if any(r.apart for t in b.tables for r in t.rows) else "") + "</p>"]
    if b.memorisation:
        items = "".join(f"<li><strong>{esc(f['model'])}</strong> ({esc(f['sampler'])}): {esc(flag_sentence(f))}</li>"
                        for f in b.memorisation)
        parts.append(f'<div class="warn memo"><strong>Possible memorisation.</strong><ul>{items}</ul></div>')
    if b.invalid:
        items = []
        for i in b.invalid:
            gap = "" if not math.isfinite(i["sigmas_below"]) else f"{i['sigmas_below']:.1f} standard errors "
            items.append(f"<li>{esc(i['model'])}: {esc(i['metric'])} ({esc(i['kind'])}) = {i['value']:.4f} ± {i['stderr']:.4f} "
                         f"in run {esc(i['run_id'])}, {gap}below the data entropy {i['entropy']:.4f} bits/dim</li>")
        items = "".join(items)
        parts.append(f'<div class="warn"><strong>Invalid likelihoods.</strong> These bits/dim lie more than 3 standard '
                     f"errors below the true entropy of the data, which is impossible for a correct model: a bug, not a "
                     f"result.<ul>{items}</ul></div>")
    for t in b.tables:
        if t.name == "memorisation":
            parts.append(f'<p class="muted small">{esc(MEMO_NOTE)}</p>')
        parts.append(_table_html(t))
    groups: dict[tuple[str, str], list[str]] = {}
    for t in b.tables:
        for c in t.columns:
            if c.per_extractor or c.metric == BITS_PER_DIM:
                groups.setdefault((c.n, c.reference, c.extractor), []).append(c.title)
    notes = [f"{esc(', '.join(titles))}: n = {esc(n) or '?'}" + (f" against {esc(ref)}" if ref else "")
             + (f", features from the {esc(ext)} extractor" if ext else "")
             for (n, ref, ext), titles in groups.items()]
    if notes:
        parts.append('<p class="muted small">Sample sizes and references — ' + "; ".join(notes) + ".</p>")
    if view.cost_plots:
        parts.append(f'<h3 id="cost-{slug(b.dataset)}">Quality against cost — {ds}</h3>')
        parts.append('<p class="muted small">One point per model and sampler setting (mean over seeds, error bar: 95% CI of FID); '
                     "the line is the Pareto front (no other point is both faster and better); squares: the baseline.</p>")
        for extractor, png in view.cost_plots:
            parts.append(f"<figure>{img(png, f'FID [{extractor}] against seconds per image on {b.dataset}', 'plot')}"
                         f"<figcaption>FID with the {esc(extractor)} extractor against sampling seconds per image "
                         "(log scale).</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)
