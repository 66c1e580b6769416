"""Does bf16 hold quality?  The verdict per family from the twin precision grids, as a stamped results file.

    genbench run --config bench/grids/precision_fp32_digits.toml    # and precision_bf16_digits.toml
    genbench report reports-bench/precision_fp32_digits            # and ..._bf16_digits
    python bench/collect.py bench/grids/precision_fp32_digits.toml # and ..._bf16_digits
    python bench/precision.py                                     # -> bench/results/precision_digits.md/.json

Both grids train every family at the quick preset on digits with the same seeds and the same number of steps (the
wall-clock budget is off), once in fp32 and once under bf16 autocast; likelihoods are always evaluated in fp32
(``genbench.runner.precision``).  A family's bf16 quality *holds* when, for every sampler and likelihood kind the
two grids share:

- FID: the bf16 seeds' mean is no higher than the upper end of the fp32 seeds' 95% interval (mean + Student t
  half-width over seeds, ``t_{0.975, n-1} s / sqrt(n)``): bf16 may not be worse than the fp32 seed-to-seed spread
  allows; a lower mean is not a loss of quality;
- bits/dim: the difference of the seed means is within 2 standard errors, the standard error being the fp32
  runs' own (their mean over seeds: each run's sample sd over test images / sqrt(n), including a stochastic
  bound's estimator noise).

Only a family whose verdict is "holds" may default to ``precision = "auto"`` (bf16 where the hardware multiplies it
natively); ``tests/bench/test_precision.py`` checks the built-in presets against the committed verdicts.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from genbench.report.intervals import ci95

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import RESULTS, write  # noqa: E402

GRIDS = ("precision_fp32_digits", "precision_bf16_digits")
TAG = "precision_digits"
#: the bits/dim tolerance in standard errors of the fp32 runs
BPD_SE = 2.0


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and 95% Student t half-width over seeds (``genbench.report.intervals.ci95``; nan for one seed) -- the
    plain seed-to-seed interval, not the report's wider ``seed_interval`` that also counts each run's own noise."""
    return statistics.fmean(values), ci95(np.asarray(values, dtype=float))


def by_family(rows: list[dict]) -> dict[str, dict[str, dict[int, dict]]]:
    """model -> measure ("fid:<sampler>", "bpd:<kind>", "train_seconds", "images_per_second:<sampler>") -> seed ->
    row: the model's (or baseline's) own test-split rows; floors and validation rows have other metric names."""
    out: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        metric = r.get("metric")
        key = {"fid": f"fid:{r.get('sampler')}", "bits_per_dim": f"bpd:{r.get('kind')}",
               "train_seconds": "train_seconds",
               "images_per_second": f"images_per_second:{r.get('sampler')}"}.get(metric)
        # one draw per training seed: a grid with sampling_seeds > 1 would add rows of other draws
        if key is not None and r.get("value") is not None and int(r.get("sampling_seed") or 0) == 0:
            out[r["model"]][key][int(r["seed"])] = r
    return out


def compare(fp32: dict[str, dict[int, dict]], bf16: dict[str, dict[int, dict]]) -> dict[str, Any]:
    """One family's comparison: every FID and bits/dim measure both grids have on the same seeds, the speeds,
    and the verdict ("holds", "does not hold", or "nothing to compare")."""
    checks, speeds = [], {}
    for key in sorted(set(fp32) & set(bf16)):
        seeds = sorted(set(fp32[key]) & set(bf16[key]))
        if not seeds:
            continue
        a = [float(fp32[key][s]["value"]) for s in seeds]
        b = [float(bf16[key][s]["value"]) for s in seeds]
        if key.startswith("fid:"):
            m32, h32 = mean_ci95(a)
            m16, h16 = mean_ci95(b)
            upper = m32 + (0.0 if math.isnan(h32) else h32)
            checks.append({"measure": key, "seeds": seeds, "fp32": a, "bf16": b, "fp32_mean": m32,
                           "fp32_half_width": h32, "bf16_mean": m16, "bf16_half_width": h16,
                           "within_interval": abs(m16 - m32) <= (0.0 if math.isnan(h32) else h32),
                           "holds": m16 <= upper})
        elif key.startswith("bpd:"):
            ses = [float(fp32[key][s].get("stderr") or math.nan) for s in seeds]
            se = statistics.fmean(ses)
            diff = statistics.fmean(b) - statistics.fmean(a)
            checks.append({"measure": key, "seeds": seeds, "fp32": a, "bf16": b, "fp32_mean": statistics.fmean(a),
                           "bf16_mean": statistics.fmean(b), "difference": diff, "fp32_stderr": se,
                           "difference_in_se": diff / se if se > 0 else math.nan,
                           "holds": math.isfinite(se) and abs(diff) <= BPD_SE * se})
        else:
            speeds[key] = {"seeds": seeds, "fp32": statistics.fmean(a), "bf16": statistics.fmean(b),
                           "ratio_bf16_over_fp32": statistics.fmean(b) / statistics.fmean(a)}
    verdict = ("nothing to compare" if not checks
               else "holds" if all(c["holds"] for c in checks) else "does not hold")
    return {"checks": checks, "speeds": speeds, "verdict": verdict}


def compare_grids(fp32_rows: list[dict], bf16_rows: list[dict]) -> dict[str, dict[str, Any]]:
    """family -> ``compare`` of its fp32 and bf16 rows, for the families both grids ran."""
    a, b = by_family(fp32_rows), by_family(bf16_rows)
    return {m: compare(a[m], b[m]) for m in sorted(set(a) & set(b))}


def sig(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, trailing zeros kept (7.00, 0.40) but no bare point (14, 137)."""
    return f"{value:#.{digits}g}".rstrip(".")


def fmt_interval(mean: float, half: float) -> str:
    return sig(mean, 3) if math.isnan(half) else f"{sig(mean, 3)} ± {sig(half, 2)}"


def markdown(families: dict[str, dict[str, Any]], missing: list[str], commands: list[str]) -> str:
    L = ["# bf16 vs fp32: does quality hold? (digits, quick preset, fixed steps)", "",
         "Made by: " + " && ".join(f"`{c}`" for c in commands), "",
         "FID: mean ± 95% Student t half-width over training seeds (1000 samples vs the test split, the grid's "
         "classifier features); holds when the bf16 mean is at most the fp32 interval's upper end.  Bits/dim: "
         f"mean over seeds (test split, always evaluated in fp32); holds when |bf16 − fp32| ≤ {BPD_SE:g} standard "
         "errors of the fp32 runs.  Speeds are means over seeds (train s: the same steps; images/s: the "
         "sampler's batch throughput).", "",
         "| family | measure | seeds | fp32 | bf16 | difference | holds |", "|---|---|---|--:|--:|--:|---|"]
    for fam, res in families.items():
        for c in res["checks"]:
            if c["measure"].startswith("fid:"):
                diff = ("+" if c["bf16_mean"] >= c["fp32_mean"] else "") + sig(c["bf16_mean"] - c["fp32_mean"], 2)
                cells = (fmt_interval(c["fp32_mean"], c["fp32_half_width"]),
                         fmt_interval(c["bf16_mean"], c["bf16_half_width"]))
            else:
                diff = f"{c['difference']:+.4f} ({c['difference_in_se']:+.2f} SE)"
                cells = (f"{c['fp32_mean']:.4f} (SE {c['fp32_stderr']:.4f})", f"{c['bf16_mean']:.4f}")
            L.append(f"| {fam} | {c['measure'].replace('fid:', 'FID ').replace('bpd:', 'bits/dim ')} | "
                     f"{','.join(map(str, c['seeds']))} | {cells[0]} | {cells[1]} | {diff} | {'yes' if c['holds'] else 'NO'} |")
    L += ["", "| family | verdict | train s fp32 → bf16 | sampler images/s fp32 → bf16 |", "|---|---|---|---|"]
    for fam, res in families.items():
        sp = res["speeds"]
        train = sp.get("train_seconds")
        t = f"{train['fp32']:.1f} → {train['bf16']:.1f} ({1 / train['ratio_bf16_over_fp32']:.2f}x)" if train else "—"
        ips = [f"{k.split(':', 1)[1]} {v['fp32']:.0f} → {v['bf16']:.0f} ({v['ratio_bf16_over_fp32']:.2f}x)"
               for k, v in sp.items() if k.startswith("images_per_second:")]
        L.append(f"| {fam} | **{res['verdict']}** | {t} | {'; '.join(ips) or '—'} |")
    if missing:
        L += ["", "Not in both grids yet (no verdict; their default stays fp32): " + ", ".join(missing) + "."]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS), help="where the grids' collected results are")
    ap.add_argument("--out", default=str(RESULTS), help="where precision_digits.md/.json go")
    args = ap.parse_args(argv)
    loaded = []
    for grid in GRIDS:
        path = Path(args.results) / f"{grid}.json"
        if not path.exists():
            sys.exit(f"{path} is missing: run the grid, `genbench report` and `python bench/collect.py "
                     f"bench/grids/{grid}.toml` first")
        loaded.append(json.loads(path.read_text()))
    families = compare_grids(loaded[0]["rows"], loaded[1]["rows"])
    listed = [m for m in loaded[0]["grid"]["models"] if m in loaded[1]["grid"]["models"]]
    missing = [m for m in listed if m not in families]
    commands = [*(c for res in loaded for c in res.get("commands", [])), "python bench/precision.py"]
    result = {"commands": commands, "criteria": {"fid": "bf16 seed mean <= fp32 seed mean + t95 half-width",
                                                 "bits_per_dim": f"|mean difference| <= {BPD_SE:g} fp32 standard errors"},
              "families": families, "verdicts": {m: r["verdict"] for m, r in families.items()}, "missing": missing,
              "sources": {g: res["stamp"] for g, res in zip(GRIDS, loaded)}}
    write(result, TAG, markdown(families, missing, commands), folder=Path(args.out))
    return result


if __name__ == "__main__":
    main()
