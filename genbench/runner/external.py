"""Scoring samples made elsewhere (``genbench eval``) into a run folder of their own, beside trained cells.

The samples (``genbench.data.samples``: read, checked and quantised once) go through the runner's own scoring
(``scoring.py``: the same ``EvalContext``, the same sample metrics -- FID with its real-data floor, KID,
precision/recall/density/coverage, class shares, memorisation -- and the same tidy rows).  Metrics that need
the model itself (``needs = "model"``: timing a draw, counting parameters) are left out; the cost figures the user
states (``nfe``, ``images_per_second``, ``parameters``) become rows instead, marked ``"source": "stated"``.

The run folder is ``<out>/runs/<name>-<data set>-s<seed>-<hash>``; the hash covers the samples' sha256, the data,
the seed, the extractors and every option, so the same evaluation is found finished and not redone.  Rows say
``role = "external"`` and ``preset = "external"``; each row's details carry the samples' sha256 (their identity)
and any explicit conversion (``--resize``).  Like a trained cell, status.json says "running" while it works,
"failed" with the error if it fails, and "done" only after rows.json is written (each file atomically).
"""
from __future__ import annotations

import io
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genbench
from genbench.config import config_hash
from genbench.data.base import DataSplits
from genbench.data.samples import Samples
from genbench.io import atomic_write_bytes, atomic_write_json
from genbench.locks import RunLock
from genbench.metrics.base import EvalContext, Measurement, SampleSet
from genbench.naming import safe_name
from genbench.plugins import Registry
from genbench.runner.cells import finished_rows
from genbench.runner.device import deterministic_kernels, preserved_rng
from genbench.runner.sampling import save_grid
from genbench.runner.scoring import data_measurements, machine_fields, metric_measurements, write_rows

log = logging.getLogger("genbench")

ROLE = "external"
PRESET = "external"  # what the rows' preset column says: these samples had no genbench preset
STATED = "stated by the user (genbench eval)"


class ExternalModel:
    """What ``EvalContext.model`` is for samples made elsewhere: a name, no likelihood, nothing to draw from."""

    likelihood = None
    role = ROLE

    def __init__(self, name: str) -> None:
        self.name = name

    def _nothing(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.name}: samples made elsewhere have no model to draw from or count; a metric that "
                           "needs the model declares needs = 'model' and is left out of genbench eval")

    sample = count_parameters = nll = nll_estimates = _nothing


@dataclass
class StatedCost:
    """Cost figures the user knows for the samples (None: not stated, the report shows "—")."""

    nfe: int | None = None
    images_per_second: float | None = None
    parameters: int | None = None

    def measurements(self, sampler: str, n: int) -> list[Measurement]:
        out = []
        details = {"source": STATED}
        if self.nfe is not None:
            out.append(Measurement("nfe", float(self.nfe), "evaluations/image", False, sampler=sampler, details=details))
        if self.images_per_second is not None:
            out.append(Measurement("images_per_second", float(self.images_per_second), "images/s", True, n=n,
                                   sampler=sampler, details=details))
        if self.parameters is not None:
            out.append(Measurement("parameters", float(self.parameters), "parameters", None, details=details))
        return out


@dataclass
class ExternalResult:
    run_dir: Path
    rows: list[dict[str, Any]]
    state: str  # "done" or "skipped" (found finished)
    seconds: float = 0.0
    identity: dict[str, Any] = field(default_factory=dict)


def evaluate_samples(samples: Samples, data: DataSplits, dataset: str, name: str, out_dir: str | Path, *,
                     registry: Registry, extractors: list[str], device: torch.device, seed: int = 0,
                     sampler: str = "external", cost: StatedCost | None = None, cache_dir: str | Path | None = None,
                     command: str = "") -> ExternalResult:
    """Score ``samples`` against ``data``'s test split into ``out_dir/runs/<run id>`` (see the module docstring)."""
    start = time.perf_counter()
    cost = cost or StatedCost()
    identity = {
        "external": True, "model": name, "dataset": dataset, "split": data.split_id, "data_hash": data.data_hash,
        "seed": seed, "samples_sha256": samples.sha256, "levels_sha256": samples.levels_sha256, "n": samples.n,
        "conversion": samples.conversion, "sampler": sampler, "nfe": cost.nfe,
        "images_per_second": cost.images_per_second, "parameters": cost.parameters, "extractors": list(extractors),
        "device": device.type,
    }
    digest = config_hash(identity)
    tag = Path(dataset).stem if "/" in dataset or dataset.endswith(".npz") else dataset
    run_id = f"{safe_name(name)}-{safe_name(tag)}-s{seed}-{digest[:10]}"
    out_dir = Path(out_dir)
    run_dir = out_dir / "runs" / run_id
    rows = finished_rows(run_dir, digest)
    if rows is not None:
        return ExternalResult(run_dir, rows, "skipped", time.perf_counter() - start, identity)
    versions = {"genbench": genbench.__version__, "torch": torch.__version__}
    base_status = {"run_id": run_id, "model": name, "role": ROLE, "dataset": dataset, "seed": seed, "preset": PRESET,
                   "config_hash": digest}
    with RunLock(run_dir):
        status_path = run_dir / "status.json"
        config_json = {"identity": identity, "config_hash": digest, "versions": versions,
                       "samples": {"source": samples.source, "stored_as": samples.stored_as,
                                   "input_shape": list(samples.input_shape)}}
        if command:
            config_json["command"] = command
        atomic_write_json(run_dir / "config.json", config_json)
        atomic_write_json(status_path, {**base_status, "state": "running", "pid": os.getpid(),
                                        "host": socket.gethostname()})
        try:
            with deterministic_kernels(device), preserved_rng():
                rows = _score(samples, data, dataset, name, run_dir, run_id, digest, versions, registry=registry,
                              extractors=extractors, device=device, seed=seed, sampler=sampler, cost=cost,
                              cache_dir=Path(cache_dir) if cache_dir is not None else out_dir / "cache")
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            atomic_write_json(status_path, {**base_status, "state": "failed", "error": error})
            raise
        atomic_write_json(status_path, {**base_status, "state": "done"})  # last: only now does the report read it
    return ExternalResult(run_dir, rows, "done", time.perf_counter() - start, identity)


def _score(samples: Samples, data: DataSplits, dataset: str, name: str, run_dir: Path, run_id: str, digest: str,
           versions: dict[str, str], *, registry: Registry, extractors: list[str], device: torch.device, seed: int,
           sampler: str, cost: StatedCost, cache_dir: Path) -> list[dict[str, Any]]:
    save_grid(data.test[:100], run_dir / "real_test.png", data.spec)
    stem = safe_name(sampler)
    buf = io.BytesIO()
    np.savez_compressed(buf, samples=samples.levels.numpy(), levels=data.spec.levels)  # as the runner saves samples
    atomic_write_bytes(run_dir / "samples" / f"{stem}.npz", buf.getvalue())
    save_grid(samples.levels[:100], run_dir / "samples" / f"{stem}.png", data.spec)
    drawn = SampleSet(label=sampler, steps=None, levels=samples.levels, nfe=cost.nfe or 0, seconds=float("nan"),
                      batch_size=samples.n)
    ctx = EvalContext(model=ExternalModel(name), data=data, samples=[drawn], device=device, cache_dir=cache_dir,  # type: ignore[arg-type]
                      seed=seed, registry=registry, extractor_names=list(extractors))
    measurements = data_measurements(ctx) + metric_measurements(ctx, needs=("samples",))
    measurements += cost.measurements(sampler, samples.n)
    for m in measurements:
        m.details = {**m.details, "samples_sha256": samples.sha256,
                     **({"conversion": samples.conversion} if samples.conversion else {})}
    cell = {
        "run_id": run_id, "model": name, "role": ROLE, "dataset": dataset, "seed": seed, "preset": PRESET,
        "split": data.split_id, "config_hash": digest, **machine_fields(device), "versions": versions,
    }
    return write_rows(run_dir, measurements, cell)
