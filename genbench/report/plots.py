"""Figures for the report, rendered with matplotlib (Agg, no pyplot state) to PNG bytes."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbench.metrics.display import FID, IMAGES_PER_SECOND
from genbench.report.intervals import rows_cell

DPI = 110
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


@dataclass(frozen=True)
class CostPoint:
    """One (model, sampler setting) in the quality-against-cost plane."""

    model: str
    sampler: str
    seconds: float  # seconds per image (1 / images per second)
    fid: float
    fid_ci: float = float("nan")
    role: str = "model"

    @property
    def label(self) -> str:
        return f"{self.model} · {self.sampler}" if self.sampler and self.sampler != "default" else self.model


def pareto_front(points: list[CostPoint]) -> list[CostPoint]:
    """Points not dominated in (seconds, FID), both lower-is-better, sorted by seconds.

    A point is on the front when no other point is at least as fast and at least as
    good and strictly better in one of the two.
    """
    finite = [p for p in points if math.isfinite(p.seconds) and math.isfinite(p.fid) and p.seconds > 0]
    front = []
    for p in finite:
        dominated = any(
            q.seconds <= p.seconds and q.fid <= p.fid and (q.seconds < p.seconds or q.fid < p.fid) for q in finite
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.seconds, p.fid))


def cost_points(df: pd.DataFrame, extractor: str) -> list[CostPoint]:
    """Mean FID over runs (with extractor ``extractor``) and mean seconds/image per (model, sampler) of one data set
    (``df``: prepared rows, with their ``role``)."""
    fid = df[(df["metric"] == FID) & (df["extractor"] == extractor)]
    ips = df[df["metric"] == IMAGES_PER_SECOND]
    out = []
    for (model, sampler), g in fid.groupby(["model", "sampler"], sort=True):
        speed = ips[(ips["model"] == model) & (ips["sampler"] == sampler)]["value"].to_numpy(dtype=float)
        speed = speed[np.isfinite(speed) & (speed > 0)]
        if len(speed) == 0:
            continue
        cell = rows_cell(g)  # the leaderboard's own interval (intervals.py)
        role = "baseline" if (g["role"] == "baseline").any() else "external" if (g["role"] == "external").any() else "model"
        out.append(CostPoint(model, sampler, float(np.mean(1.0 / speed)), cell.mean, cell.ci, role))
    return out


#: the FID axis turns logarithmic when the largest FID on the plot is this many times the smallest
LOG_FID_SPREAD = 20.0


# candidate label offsets (points) from a marker, tried in this order: right-above, right-below, left-above, ...
LABEL_OFFSETS = [(6, 3), (6, -14), (-6, 3), (-6, -14), (6, 14), (6, -25), (-6, 14), (-6, -25)]
LABEL_HEIGHT = 11.0  # points: a fontsize-8 line with its descent, as drawn with va="bottom"


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Area shared by two boxes (x0, y0, x1, y1)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def label_box(anchor: tuple[float, float], offset: tuple[int, int], size: tuple[float, float]) -> tuple[float, float, float, float]:
    """The box (x0, y0, x1, y1) of a label of ``size`` put at ``offset`` from ``anchor``: left-aligned at a
    positive x offset, right-aligned at a negative one, bottom at the y offset."""
    (x, y), (dx, dy), (w, h) = anchor, offset, size
    x0 = x + dx if dx >= 0 else x + dx - w
    return x0, y + dy, x0 + w, y + dy + h


def place_labels(
    anchors: list[tuple[float, float]],
    sizes: list[tuple[float, float]],
    obstacles: list[tuple[float, float, float, float]] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> list[tuple[int, int]]:
    """One offset from ``LABEL_OFFSETS`` per label, greedily, so that label boxes overlap as little as possible.

    ``anchors``: marker positions in points (display coordinates); ``sizes``: each label's (width, height) in
    points; ``obstacles``: boxes (x0, y0, x1, y1) no label should cover (markers, error bars); ``bounds``: the
    box labels must stay inside (the figure), each point of area outside it counting ten times.  A negative x
    offset puts the label's right edge at the offset (the caller aligns it right).  Labels are placed in the
    order given; each takes the first offset whose box overlaps nothing placed before, or, if every one
    overlaps, the offset with the least overlapping area.
    """
    placed: list[tuple[float, float, float, float]] = list(obstacles or [])
    chosen: list[tuple[int, int]] = []
    for anchor, (w, h) in zip(anchors, sizes):
        best, best_box, best_area = LABEL_OFFSETS[0], label_box(anchor, LABEL_OFFSETS[0], (w, h)), math.inf
        for offset in LABEL_OFFSETS:
            box = label_box(anchor, offset, (w, h))
            area = sum(_overlap(box, b) for b in placed)
            if bounds is not None:
                area += 10.0 * max(0.0, w * h - _overlap(box, bounds))
            area = area if area > 1e-6 else 0.0  # rounding of w * h - overlap
            if area < best_area:
                best, best_box, best_area = offset, box, area
            if area == 0:
                break
        placed.append(best_box)
        chosen.append(best)
    return chosen


def fid_axis_is_log(points: list[CostPoint], floors: list[tuple[int | None, float]]) -> bool:
    """Log FID axis when every FID is positive and they span more than LOG_FID_SPREAD: a weak baseline
    (FID 140 beside models at 4) would otherwise flatten every real model onto the axis."""
    fids = [p.fid for p in points if math.isfinite(p.fid)] + [f for _, f in floors if math.isfinite(f)]
    return bool(fids) and min(fids) > 0 and max(fids) / min(fids) > LOG_FID_SPREAD


def quality_cost_png(points: list[CostPoint], floors: list[tuple[int | None, float]], title: str) -> bytes:
    """FID against seconds per image (log x), one point per model and sampler (squares: baselines), Pareto front
    as a step line."""
    fig = _figure(8.0, 4.2)
    ax = fig.add_subplot()
    models = sorted({p.model for p in points})
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(models)}
    front = pareto_front(points)
    right = max(p.seconds for p in points) * 4.0 if points else 1.0
    if front:  # a staircase: what is attainable at each cost; the last step runs to the right edge
        xs, ys = [], []
        for p in front:
            if xs:
                xs.append(p.seconds)
                ys.append(ys[-1])
            xs.append(p.seconds)
            ys.append(p.fid)
        xs.append(right)
        ys.append(ys[-1])
        ax.plot(xs, ys, color="#444", lw=1.2, ls="-", zorder=1, label="Pareto front")
    on_front = {(p.model, p.sampler) for p in front}
    in_legend: set[str] = set()
    for p in points:
        marker = "s" if p.role == "baseline" else "D" if p.role == "external" else "o"  # D: genbench eval
        yerr = None if not math.isfinite(p.fid_ci) else [[p.fid_ci], [p.fid_ci]]
        ax.errorbar([p.seconds], [p.fid], yerr=yerr, fmt=marker, color=colour[p.model], ms=7 if (p.model, p.sampler) in on_front else 5,
                    mec="black" if (p.model, p.sampler) in on_front else colour[p.model], capsize=2, zorder=3,
                    label=None if p.model in in_legend else p.model)
        in_legend.add(p.model)
    for i, (n, floor) in enumerate(floors):
        if math.isfinite(floor):
            size = "" if n is None else f", n={n}"
            ax.axhline(floor, color="#2ca02c", ls=["--", ":", "-."][i % 3], lw=1, label=f"real-data floor ({floor:.3g}{size})")
    ax.set_xscale("log")
    if points:
        lo = min(p.seconds for p in points)
        ax.set_xlim(lo / 2.5, right)
    ax.set_xlabel("seconds per image (sampling, log scale) — lower is cheaper")
    if fid_axis_is_log(points, floors):
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylabel("FID (log scale) — lower is better")
    else:
        ax.set_ylabel("FID — lower is better")
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    # the legend names the models (by colour) outside the axes; a point is labelled with its sampler only where
    # its model has several, so that the labels stay short.  Labels come last, once the axes' scales and limits
    # are final, placed so that points at equal cost (DDPM and LDM samplers, say) do not print over each other
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.85, borderaxespad=0.0)
    fig.draw_without_rendering()  # the constrained layout fixes the axes' place only when drawn ...
    fig.set_layout_engine("none")  # ... and would move them again at savefig: keep the place the labels are for
    to_points = 72.0 / DPI
    log_y = ax.get_yscale() == "log"
    drawn = [p for p in points if math.isfinite(p.seconds) and math.isfinite(p.fid) and p.seconds > 0
             and (p.fid > 0 or not log_y)]
    samplers_of = {m: sum(q.model == m for q in points) for m in models}
    shown = [p for p in drawn if samplers_of[p.model] > 1 and p.sampler]

    def at(x: float, y: float) -> tuple[float, float]:
        px, py = ax.transData.transform((x, y))
        return px * to_points, py * to_points

    anchors = [at(p.seconds, p.fid) for p in shown]
    sizes = [(0.6 * 8 * len(p.sampler), LABEL_HEIGHT) for p in shown]  # fontsize 8: ~0.6 em per character
    obstacles = []  # every marker and error bar on the plot, labelled or not, as drawn (clipped to the axes)
    bottom, top = ax.get_ylim()
    for p in drawn:
        x, y = at(p.seconds, p.fid)
        obstacles.append((x - 4, y - 4, x + 4, y + 4))
        if math.isfinite(p.fid_ci):
            low = p.fid - p.fid_ci if p.fid - p.fid_ci > 0 or not log_y else bottom
            obstacles.append((x - 1, at(p.seconds, max(low, bottom))[1], x + 1, at(p.seconds, min(p.fid + p.fid_ci, top))[1]))
    width, height = fig.get_size_inches() * 72.0
    for p, (dx, dy) in zip(shown, place_labels(anchors, sizes, obstacles, (0.0, 0.0, width, height))):
        note = ax.annotate(p.sampler, (p.seconds, p.fid), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                           ha="left" if dx >= 0 else "right", va="bottom", color=colour[p.model],
                           annotation_clip=False)
        note.set_in_layout(False)  # placed for the axes as laid out above: they must not move them
    return _png(fig)


def curve_columns(frames: dict[int, pd.DataFrame]) -> tuple[list[str], list[str], list[str]]:
    """The curves' columns by panel: training losses, other logged values, validation bits/dim (``val_bits_per_dim``
    first, then a preliminary stage's ``val_<stage>_bits_per_dim``, e.g. the LDM's autoencoder; standard errors are
    not curves of their own)."""
    def is_validation(key: str) -> bool:
        return key.startswith("val_") and (key.endswith("bits_per_dim") or key.endswith("_stderr"))

    logged = list(dict.fromkeys(k for c in frames.values() for k in c.columns
                                if k not in ("step", "seconds") and not is_validation(k)))
    losses = [k for k in logged if "loss" in k.lower()] or logged[:1]
    others = [k for k in logged if k not in losses]
    val_keys = list(dict.fromkeys(k for c in frames.values() for k in c.columns
                                  if is_validation(k) and k.endswith("bits_per_dim") and c[k].notna().any()))
    val_keys.sort(key=lambda k: k != "val_bits_per_dim")
    return losses, others, val_keys


def curves_png(curves: dict[int, pd.DataFrame]) -> bytes | None:
    """Training losses against step and against wall time (every seed); validation bits/dim and any
    other logged signal (gradient norms, learning rates...) against step in panels of their own."""
    frames = {s: c for s, c in curves.items() if c is not None and not c.empty and "step" in c}
    if not frames:
        return None
    losses, others, val_keys = curve_columns(frames)
    has_val = bool(val_keys)
    panels = 2 + int(has_val) + int(bool(others))
    fig = _figure(3.3 * panels, 2.7)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    styles = ["-", "--", ":", "-."]
    val_ax = axes[2] if has_val else None
    other_ax = axes[-1] if others else None

    def draw(ax, x, y, **kw):
        few = len(x) <= 25
        ax.plot(x, y, marker="o" if few else None, ms=3, **kw)

    for si, (seed, c) in enumerate(sorted(frames.items(), key=lambda kv: str(kv[0]))):
        suffix = f" (seed {seed})" if len(frames) > 1 else ""
        for ki, key in enumerate(losses + others):
            if key not in c:
                continue
            part = c[["step", "seconds", key]].dropna()
            if part.empty:
                continue
            kw = dict(color=COLOURS[ki % len(COLOURS)], ls=styles[si % len(styles)], lw=1, alpha=0.9, label=key + suffix)
            if key in losses:
                draw(axes[0], part["step"], part[key], **kw)
                draw(axes[1], part["seconds"], part[key], **kw)
            else:
                draw(other_ax, part["step"], part[key], **kw)
        for vi, key in enumerate(val_keys if val_ax is not None else []):
            if key not in c:
                continue
            v = c[["step", key]].dropna()
            stage = key.removeprefix("val_").removesuffix("_bits_per_dim").removesuffix("_")
            label = f"seed {seed}" if key == "val_bits_per_dim" else f"{stage} stage criterion, seed {seed}"
            val_ax.plot(v["step"], v[key], marker="o" if vi == 0 else "s", ms=3, lw=1, ls=styles[si % len(styles)],
                        color="#333" if vi == 0 else COLOURS[vi % len(COLOURS)], label=label)
    axes[0].set(xlabel="step", ylabel="training loss")
    axes[0].set_title("loss vs step", fontsize=9)
    axes[1].set(xlabel="wall time (s)")
    axes[1].set_title("loss vs wall time", fontsize=9)
    if val_ax is not None:
        val_ax.set(xlabel="step", ylabel="bits/dim")
        val_ax.set_title("validation bits/dim", fontsize=9)
        if len(val_keys) > 1:
            val_ax.legend(fontsize=6, frameon=False)
    if other_ax is not None:
        other_ax.set(xlabel="step")
        other_ax.set_title("other logged values", fontsize=9)
        other_ax.legend(fontsize=6, frameon=False)
    for ax in axes:
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=7)
    if losses:
        axes[0].legend(fontsize=6, frameon=False)
    return _png(fig)
