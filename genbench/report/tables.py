"""Tidy rows -> leaderboards: mean ± 95% CI over seeds per (model, sampler) and metric.

A data set's leaderboard has three tables with the same model order:

- sample quality (one row per model and sampler setting: FID per extractor, KID,
  precision/recall, the classifier's view of the samples),
- likelihood (one row per model: bits/dim per estimate kind, validation bits/dim),
- cost (one row per model and sampler: images/s, latency, NFE, FLOPs; training
  seconds, steps, parameters shared by the model's sampler rows).

Reference rows: the real-data floor (``*_floor`` metrics such as ``fid_floor``;
``data_entropy`` — the true entropy of the data, a bound no model's bits/dim may
go below) and the per-pixel baseline model.  A bits/dim more than three standard
errors below the data entropy is flagged invalid and never marked best.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"
BASELINE = "independent"
FLOOR_LABEL = "real data (floor)"
ENTROPY_LABEL = "data entropy (floor)"
INVALID_SIGMAS = 3.0


@dataclass(frozen=True)
class MetricSpec:
    """How a metric appears: title, table ("quality" | "likelihood" | "cost"), display scale and unit."""

    title: str
    table: str
    scale: float = 1.0
    per_model: bool = False  # measured once per model (no sampler)


METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec("FID", "quality"),
    "kid": MetricSpec("KID", "quality"),
    "precision": MetricSpec("precision", "quality"),
    "recall": MetricSpec("recall", "quality"),
    "density": MetricSpec("density", "quality"),
    "coverage": MetricSpec("coverage", "quality"),
    "confident_share": MetricSpec("confident share", "quality"),
    "class_entropy": MetricSpec("class entropy (bits)", "quality"),
    "min_class_share": MetricSpec("rarest class share", "quality"),
    "bits_per_dim": MetricSpec("bits/dim", "likelihood", per_model=True),
    "val_bits_per_dim": MetricSpec("val bits/dim (primary estimate)", "likelihood", per_model=True),
    "images_per_second": MetricSpec("images/s", "cost"),
    "latency": MetricSpec("ms/image (batch 1)", "cost", scale=1e3),
    "nfe": MetricSpec("NFE", "cost"),
    "flops_per_image": MetricSpec("FLOPs/image", "cost"),
    "peak_memory": MetricSpec("peak MiB", "cost"),
    "train_seconds": MetricSpec("train s", "cost", per_model=True),
    "train_steps": MetricSpec("train steps", "cost", per_model=True),
    "parameters": MetricSpec("parameters", "cost", per_model=True),
}
# metrics that describe the data, not a model: they become the reference row
REFERENCE_METRICS = {"data_entropy"}
# metrics whose extractor is part of their identity (FID with two extractors = two columns)
FEATURE_METRICS = {"fid", "kid", "precision", "recall", "density", "coverage"}
# metrics whose kind is not part of the column (validation bits/dim uses each model's primary estimate)
KINDLESS = {"val_bits_per_dim"}
TABLES = {"quality": "Sample quality", "likelihood": "Likelihood", "cost": "Cost"}
KIND_ORDER = ["exact", "IWAE", "ELBO", "VLB"]


@dataclass(frozen=True)
class Column:
    metric: str
    kind: str
    extractor: str
    title: str
    higher: bool | None
    per_model: bool
    unit: str = ""
    n: str = ""  # sample sizes behind the values ("1000" or "500, 1000")
    reference: str = ""  # what the values are measured against


@dataclass
class Cell:
    mean: float
    ci: float = float("nan")
    seeds: int = 0
    invalid: bool = False
    best: bool = False
    note: str = ""

    def text(self, scale: float = 1.0) -> str:
        return fmt_value(self.mean * scale, self.ci * scale)


@dataclass
class Row:
    model: str
    sampler: str
    role: str  # model | baseline | floor
    seeds: int = 0


@dataclass
class Table:
    name: str  # quality | likelihood | cost
    title: str
    columns: list[Column]
    rows: list[Row]
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)

    def cell(self, r: int, c: int) -> Cell | None:
        return self.cells.get((r, c))


@dataclass
class Board:
    dataset: str
    tables: list[Table]
    invalid: list[dict[str, Any]]  # one record per flagged (model, kind, run)
    entropy: float | None


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


_SI = [(1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")]  # (from, divide by, suffix)


def _sig(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def fmt_value(mean: float | None, ci: float = float("nan")) -> str:
    """``mean ± ci`` with the mean rounded to the CI's precision (2 significant digits of the CI).

    Large numbers use SI suffixes (k, M, G, T), tiny ones scientific notation; nan -> "—".
    """
    if mean is None or not math.isfinite(mean):
        return MISSING
    has_ci = ci is not None and math.isfinite(ci)
    big = max(abs(mean), abs(ci) if has_ci else 0.0)
    if has_ci and ci == 0:  # identical over seeds (step counts, NFE, parameters)
        has_ci = False
    for threshold, factor, suffix in _SI:
        if big >= threshold:
            m = mean / factor
            if has_ci:
                text = fmt_value(m, ci / factor)
                left, _, right = text.partition(" ± ")
                return f"{left}{suffix} ± {right}{suffix}"
            return (_sig(m, 3) if abs(m) >= 1 else _sig(m, 2)) + suffix
    if mean != 0 and abs(mean) < 1e-3:
        text = f"{mean:.3g}"
        return text + (f" ± {ci:.2g}" if has_ci else "")
    if has_ci and ci > 0:
        decimals = max(0, 1 - int(math.floor(math.log10(ci))))
        decimals = min(decimals, 6)
        return f"{mean:.{decimals}f} ± {ci:.{decimals}f}"
    if float(mean).is_integer():
        return str(int(mean))
    return _sig(mean, 4)


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _higher(values: pd.Series) -> bool | None:
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
    return None


def _kind_rank(kind: str) -> tuple[int, str]:
    for i, k in enumerate(KIND_ORDER):
        if kind.startswith(k):
            return i, kind
    return len(KIND_ORDER), kind


def is_baseline(model: str, baseline: str) -> bool:
    return model == baseline or model.startswith(f"{baseline} [")


def prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with string keys cleaned (NaN -> "") and float values.

    A model run with several presets on one data set becomes one leaderboard entry per
    preset, named ``model [preset]``: numbers from different budgets are never averaged.
    """
    df = frame.copy()
    for c in ("model", "dataset", "sampler", "kind", "extractor", "metric", "run_id", "unit", "preset"):
        df[c] = [_clean(v) for v in df[c]] if c in df else ""
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["stderr"] = pd.to_numeric(df.get("stderr"), errors="coerce") if "stderr" in df else np.nan
    if not df.empty:
        several = df.groupby(["dataset", "model"])["preset"].transform("nunique") > 1
        df.loc[several, "model"] = df.loc[several, "model"] + " [" + df.loc[several, "preset"] + "]"
    return df


def _columns(df: pd.DataFrame) -> dict[str, list[Column]]:
    """Columns per table, ordered: known metrics in METRICS order, then unknown ones by name."""
    out: dict[str, list[Column]] = {t: [] for t in TABLES}
    metric_rows = df[~df["metric"].isin(REFERENCE_METRICS) & ~df["metric"].str.endswith("_floor")]
    metric_rows = metric_rows.assign(kind=metric_rows["kind"].where(~metric_rows["metric"].isin(KINDLESS), ""))
    keys = metric_rows.groupby(["metric", "kind", "extractor"], sort=False)
    order = {m: i for i, m in enumerate(METRICS)}
    several_extractors = metric_rows.groupby("metric")["extractor"].nunique()
    feature_rows = metric_rows[metric_rows["metric"].isin(FEATURE_METRICS)]
    n_extractors = feature_rows.loc[feature_rows["extractor"] != "", "extractor"].nunique()

    def sort_key(key: tuple[str, str, str]) -> tuple:
        metric, kind, extractor = key
        return (order.get(metric, len(order)), metric, _kind_rank(kind), extractor)

    for key in sorted(keys.groups, key=sort_key):
        metric, kind, extractor = key
        g = keys.get_group(key)
        spec = METRICS.get(metric)
        if spec is None:  # a metric the report does not know: place it by whether it has a sampler
            per_model = bool((g["sampler"] == "").all())
            spec = MetricSpec(metric, "likelihood" if per_model and g["unit"].eq("bits/dim").all() else
                              "cost" if per_model else "quality", per_model=per_model)
        title = spec.title
        if kind:
            title += f" ({kind})"
        if extractor and several_extractors.get(metric, 0) > 1 or (extractor and metric in FEATURE_METRICS and n_extractors > 1):
            title += f" [{extractor}]"
        unit = next((u for u in g["unit"] if u), "")
        ns = sorted({int(v) for v in pd.to_numeric(g["n"], errors="coerce").dropna()}) if "n" in g else []
        refs = sorted({str(v) for v in g["reference"].dropna() if str(v)}) if "reference" in g else []
        out[spec.table].append(Column(metric, kind, extractor, title, _higher(g["higher_is_better"]), spec.per_model, unit,
                                      ", ".join(map(str, ns)), "; ".join(refs)))
    return out


def _stats(values: pd.Series) -> Cell:
    v = values.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return Cell(float("nan"))
    return Cell(float(v.mean()), ci95(v), len(v))


def _model_order(df: pd.DataFrame, models: list[str], baseline: str) -> list[str]:
    """Models by their best mean FID (first FID column), then by bits/dim, then by name; baseline last."""
    def score(model: str) -> tuple:
        sub = df[df["model"] == model]
        fid = sub[sub["metric"] == "fid"]
        if not fid.empty:
            first_extractor = sorted(df.loc[df["metric"] == "fid", "extractor"].unique())[0]
            best = fid[fid["extractor"] == first_extractor].groupby("sampler")["value"].mean()
            if not best.empty and math.isfinite(best.min()):
                return (0, float(best.min()), model)
        bpd = sub[sub["metric"] == "bits_per_dim"]["value"]
        if not bpd.empty:
            return (1, float(bpd.min()), model)
        return (2, 0.0, model)

    ordered = sorted((m for m in models if not is_baseline(m, baseline)), key=score)
    return ordered + [m for m in models if is_baseline(m, baseline)]


def invalid_likelihoods(df: pd.DataFrame, entropy: float | None, sigmas: float = INVALID_SIGMAS) -> list[dict[str, Any]]:
    """Runs whose bits/dim is more than ``sigmas`` standard errors below the data's entropy.

    Test-split bits/dim only (they carry a standard error; a finite sample's mean may fall
    slightly below the entropy by chance).  A missing standard error counts as zero.
    """
    if entropy is None or not math.isfinite(entropy):
        return []
    out = []
    lik = df[df["metric"] == "bits_per_dim"]  # validation bits/dim has no standard error: not judged
    for r in lik.itertuples():
        se = 0.0 if r.stderr is None or not math.isfinite(r.stderr) else float(r.stderr)
        if r.value < entropy - sigmas * se:
            gap = (entropy - r.value) / se if se > 0 else float("inf")
            out.append({"model": r.model, "metric": r.metric, "kind": r.kind, "run_id": r.run_id, "seed": r.seed,
                        "value": float(r.value), "stderr": se, "entropy": entropy, "sigmas_below": gap})
    return out


def build_board(df: pd.DataFrame, dataset: str, baseline: str = BASELINE) -> Board:
    """The leaderboard of one data set (``df`` already restricted to it and ``prepared``)."""
    entropy_rows = df.loc[df["metric"] == "data_entropy", "value"].dropna()
    entropy = float(entropy_rows.mean()) if not entropy_rows.empty else None
    invalid = invalid_likelihoods(df, entropy)
    invalid_keys = {(i["model"], i["metric"], "" if i["metric"] in KINDLESS else i["kind"]) for i in invalid}
    floors = df[df["metric"].str.endswith("_floor")]
    models = _model_order(df, sorted(df.loc[~df["metric"].isin(REFERENCE_METRICS) & ~df["metric"].str.endswith("_floor"),
                                            "model"].unique()), baseline)
    runs_per_model = df.groupby("model")["run_id"].nunique().to_dict()
    tables = []
    for name, columns in _columns(df).items():
        if not columns:
            continue
        per_sampler = any(not c.per_model for c in columns)
        rows: list[Row] = []
        for model in models:
            sub = df[df["model"] == model]
            own = sub[(sub["sampler"] != "") & ~sub["metric"].isin(REFERENCE_METRICS) & ~sub["metric"].str.endswith("_floor")]
            samplers = list(dict.fromkeys(own["sampler"])) if per_sampler else []
            role = "baseline" if is_baseline(model, baseline) else "model"
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
        table = Table(name, TABLES[name], columns, rows)
        for ci_, col in enumerate(columns):
            sel = df[(df["metric"] == col.metric) & ((df["kind"] == col.kind) | (col.metric in KINDLESS))
                     & (df["extractor"] == col.extractor)]
            for ri, row in enumerate(rows):
                if row.role == "floor":
                    if col.metric == "bits_per_dim" or col.metric == "val_bits_per_dim":
                        if entropy is not None:
                            table.cells[(ri, ci_)] = Cell(entropy, note="true entropy of the data: no model may go below")
                        continue
                    fl = floors[(floors["metric"] == f"{col.metric}_floor") & (floors["extractor"] == col.extractor)
                                & floors["run_id"].isin(floor_runs.get(ri, set()))]
                    if not fl.empty:
                        cell = _stats(fl.groupby("run_id")["value"].mean())
                        n = sorted({int(v) for v in pd.to_numeric(fl["n"], errors="coerce").dropna()})
                        cell.note = ("real images outside the test split vs the test split"
                                     + (f" (n={', '.join(map(str, n))})" if n else ""))
                        table.cells[(ri, ci_)] = cell
                    continue
                vals = sel[(sel["model"] == row.model) & ((sel["sampler"] == row.sampler) | (sel["sampler"] == ""))]
                if vals.empty:
                    continue
                cell = _stats(vals["value"])
                se = vals["stderr"].dropna()
                if len(se):
                    cell.note = (f"mean over {cell.seeds} seed(s)" + ("" if math.isnan(cell.ci) else " ± 95% CI over seeds")
                                 + f"; standard error within a run (test split): {float(se.mean()):.2g}")
                cell.invalid = (row.model, col.metric, col.kind) in invalid_keys
                if cell.invalid:
                    cell.note = "INVALID: below the data entropy by more than 3 standard errors"
                table.cells[(ri, ci_)] = cell
            _mark_best(table, ci_)
        tables.append(table)
    return Board(dataset, tables, invalid, entropy)


def _floor_groups(floors: pd.DataFrame) -> list[tuple[int | None, set[str]]]:
    """Floor rows: one per FID-floor sample size (a Frechet distance's bias depends on n), as sets of run ids."""
    if floors.empty:
        return []
    fid = floors[floors["metric"] == "fid_floor"]
    sizes = pd.to_numeric(fid["n"], errors="coerce")
    if fid.empty or sizes.nunique() <= 1:
        return [(None, set(floors["run_id"]))]
    return [(int(n), set(g["run_id"])) for n, g in fid.assign(n=sizes).dropna(subset=["n"]).groupby("n")]


def _mark_best(table: Table, c: int) -> None:
    col = table.columns[c]
    if col.higher is None:
        return
    cands = [(r, cell) for (r, cc), cell in table.cells.items()
             if cc == c and table.rows[r].role != "floor" and not cell.invalid and math.isfinite(cell.mean)]
    if len({table.rows[r].model for r, _ in cands}) < 2:
        return
    best = max(cell.mean for _, cell in cands) if col.higher else min(cell.mean for _, cell in cands)
    if all(math.isclose(cell.mean, best, rel_tol=1e-12, abs_tol=0.0) for _, cell in cands):
        return  # everyone ties: nothing to point at
    for _, cell in cands:
        cell.best = math.isclose(cell.mean, best, rel_tol=1e-12, abs_tol=0.0)


def build_boards(frame: pd.DataFrame, baseline: str = BASELINE) -> dict[str, Board]:
    """One leaderboard per data set."""
    if frame.empty:
        return {}
    df = prepared(frame)
    return {str(ds): build_board(g, str(ds), baseline) for ds, g in df.groupby("dataset", sort=True)}


def spec_of(column: Column) -> MetricSpec:
    return METRICS.get(column.metric, MetricSpec(column.metric, "quality"))


def arrow(column: Column) -> str:
    return " ↑" if column.higher is True else " ↓" if column.higher is False else ""


def table_records(board: Board) -> list[dict[str, Any]]:
    """Every leaderboard cell as a flat record (for results.json)."""
    out = []
    for t in board.tables:
        for (r, c), cell in sorted(t.cells.items()):
            row, col = t.rows[r], t.columns[c]
            out.append({
                "dataset": board.dataset, "table": t.name, "model": row.model, "sampler": row.sampler, "role": row.role,
                "metric": col.metric, "kind": col.kind, "extractor": col.extractor, "column": col.title,
                "higher_is_better": col.higher, "mean": cell.mean, "ci95": None if math.isnan(cell.ci) else cell.ci,
                "seeds": cell.seeds, "best": cell.best, "invalid": cell.invalid,
            })
    return out


def _display_rows(t: Table) -> tuple[list[str], list[list[str]]]:
    header = ["model"] + (["sampler"] if any(r.sampler for r in t.rows) else []) + ["seeds"] + \
             [c.title + arrow(c) for c in t.columns]
    body = []
    with_sampler = "sampler" in header
    for r, row in enumerate(t.rows):
        name = row.model + (" (baseline)" if row.role == "baseline" else "")
        line = [name] + ([row.sampler] if with_sampler else []) + [str(row.seeds) if row.seeds else ""]
        for c, col in enumerate(t.columns):
            cell = t.cell(r, c)
            text = MISSING if cell is None else cell.text(spec_of(col).scale)
            if cell is not None and cell.invalid:
                text += " INVALID"
            elif cell is not None and cell.best:
                text = f"**{text}**"
            line.append(text)
        body.append(line)
    return header, body


def _md_escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("\n", " "))


def to_markdown(board: Board) -> str:
    """The board's tables as GitHub Markdown (best values in bold)."""
    parts = [f"### {_md_escape(board.dataset)}\n"]
    if board.entropy is not None:
        parts.append(f"Data entropy (no model may go below): {board.entropy:.4f} bits/dim.\n")
    for t in board.tables:
        header, body = _display_rows(t)
        parts.append(f"#### {t.title}\n")
        parts.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        parts.append("|" + "|".join(["---"] + ["---"] * ("sampler" in header) + ["--:"] * (len(header) - 1 - ("sampler" in header))) + "|")
        for line in body:
            cells = []
            for v in line:
                bold = v.startswith("**") and v.endswith("**")
                inner = _md_escape(v[2:-2] if bold else v)
                cells.append(f"**{inner}**" if bold else inner)
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "±": r"$\pm$", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(board: Board) -> str:
    """The board's tables as LaTeX ``tabular`` (booktabs; best values in bold)."""
    parts = [f"% genbench leaderboard: {tex_escape(board.dataset)}"]
    for t in board.tables:
        header, body = _display_rows(t)
        n_left = 2 if "sampler" in header else 1
        parts.append(f"% {t.title}")
        parts.append(r"\begin{tabular}{" + "l" * n_left + "r" * (len(header) - n_left) + "}")
        parts.append(r"\toprule")
        parts.append(" & ".join(tex_escape(h) for h in header) + r" \\")
        parts.append(r"\midrule")
        for line in body:
            cells = []
            for v in line:
                if v.startswith("**") and v.endswith("**"):
                    cells.append(r"\textbf{" + tex_escape(v[2:-2]) + "}")
                else:
                    cells.append(tex_escape(v))
            parts.append(" & ".join(cells) + r" \\")
        parts.append(r"\bottomrule")
        parts.append(r"\end{tabular}")
        parts.append("")
    return "\n".join(parts) + "\n"
