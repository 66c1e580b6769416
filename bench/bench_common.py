"""Helpers the benchmark scripts share: drawing timed samples and writing result files."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from genbench.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def draw(model, n: int, batch: int, steps: int | None, seed: int, spec) -> tuple[torch.Tensor, float]:
    """``n`` samples (quantised to the data's levels once, returned as unit floats) and the seconds they took."""
    gen = torch.Generator().manual_seed(seed)
    model.train(False)
    out, seconds = [], 0.0
    for i in range(0, n, batch):
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = model.sample(min(batch, n - i), steps=steps, generator=gen)
        seconds += time.perf_counter() - t0
        out.append(spec.quantise(x.cpu()))
    return spec.to_unit(torch.cat(out)), seconds


def details(row: dict | None) -> dict:
    """A row's details (rows.json stores them as a JSON string)."""
    d = (row or {}).get("details") or {}
    return json.loads(d) if isinstance(d, str) else d


def stats(values: list[float]) -> dict:
    """The values (rounded), their mean and sample standard deviation (nan for one value)."""
    return {"values": [round(v, 4) for v in values], "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else float("nan")}


def write(result: dict, tag: str, markdown: str) -> None:
    """bench/results/<tag>.json and .md (atomically), and the Markdown on stdout."""
    atomic_write_text(RESULTS / f"{tag}.json", json.dumps(result, indent=2, default=str) + "\n")
    atomic_write_text(RESULTS / f"{tag}.md", markdown)
    print(markdown)
