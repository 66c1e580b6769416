"""Machine-readable output of the commands (``--json``): the documented keys of each document, and writing one.

``genbench list --json`` prints :data:`LIST_KEYS` (each a list of entries with :data:`ENTRY_KEYS`, plus the
kind's own keys); ``genbench run --json FILE|-`` writes :data:`RUN_KEYS` (``cells`` entries with
:data:`CELL_KEYS`, ``rows`` entries with :data:`ROW_KEYS`, the tidy rows of ``rows.json``); ``genbench fid A B
--json FILE|-`` writes a list of :data:`FID_ROW_KEYS` objects.  ``-`` is standard output (the human-readable
lines then go to standard error).  Every key is always present (null when it does not apply).  The descriptions
here are the documentation (README "Machine-readable output"); a test checks each command's output against them.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from genbench.io import atomic_write_text
from genbench.results import COLUMNS

SCHEMA_RUN = "genbench.run/1"
SCHEMA_LIST = "genbench.list/1"

#: a registered thing in ``genbench list --json``
ENTRY_KEYS = {
    "name": "the name to give on the command line",
    "description": "one line about it (the class's `description`)",
    "distribution": "the installed distribution that registered it (`genbench` for the core)",
    "version": "that distribution's version",
}
MODEL_KEYS = {
    **ENTRY_KEYS,
    "likelihood": "the kind of its primary likelihood (`exact`, `ELBO`, `VLB`, ...) or null",
    "supports_steps": "whether `sample(steps=...)` changes the number of network evaluations",
    "role": "`model`, or `baseline` for a reference model",
    "presets": "the presets it defines (empty: it runs on its Config defaults under any preset)",
    "config": "its Config fields and their defaults",
}
DATASET_KEYS = {
    **ENTRY_KEYS,
    "shape": "[channels, height, width], or null when the shape comes from files",
    "levels": "K, the number of levels per sub-pixel, or null",
    "splits": "{split: size}, or null when the splits come from files",
}
LIST_KEYS = {
    "schema": f"`{SCHEMA_LIST}`",
    "models": "registered models (keys below)",
    "datasets": "registered data sets (keys below); a path (.npz, PNG folder) is accepted too",
    "metrics": "registered metrics (keys below)",
    "extractors": "registered feature extractors (keys below)",
    "loggers": "registered experiment trackers for `genbench run --log` (keys below)",
    "plugins": "plugin distributions: {distribution, version, module}",
}
CELL_KEYS = {
    "run_id": "the run folder's name (`<model>-<data>-s<seed>-<config hash>`), null when planning failed",
    "model": "model name", "dataset": "data set name or path", "seed": "training seed", "preset": "preset name",
    "state": "`done` (trained and scored now), `skipped` (finished before: rows read back) or `failed`",
    "error": "the one-line error of a failed cell, else empty",
    "seconds": "wall seconds the cell took here",
    "run_dir": "the run folder, or null",
}
ROW_KEYS = {name: "a tidy-row column (README, \"What a run does\")" for name in COLUMNS}
RUN_KEYS = {
    "schema": f"`{SCHEMA_RUN}`",
    "out": "the folder the runs went to (`--out`)",
    "report": "the index.html written after the run, or null (`--no-report`, or it could not be written)",
    "cells": "one object per cell of the grid, in grid order (keys below)",
    "rows": "the tidy rows of every done or skipped cell (the columns of rows.json); details and versions are JSON text",
    "task_rows": "the rows of `--task` on every finished cell (`<run>/tasks/*/rows.json`): the columns of `rows` plus "
                 "`task` (its name) and `mask` (the setting: mask, noise level or grey, then the `--task-set` options "
                 "the model took); details record the method's options; empty without `--task`",
}
#: a ``task_rows`` entry: a tidy row and the task's two columns (``genbench.tasks.run.TASK_COLUMNS``)
TASK_ROW_KEYS = {**ROW_KEYS, "task": "the task's name (`--task`)",
                 "mask": "the setting: the mask, `sigma=S` or the grey rule, then `, KEY=VALUE` per `--task-set` option"}
FID_ROW_KEYS = {
    "metric": "`fid`, `kid`, `precision`, `recall`, `density` or `coverage`",
    "value": "the number",
    "n_reference": "images of A used", "n": "images of B used",
    "extractor": "feature extractor name", "extractor_sha256": "sha256 of its weights",
    "resize": "how images were brought to the extractor's input",
    "reference": "A", "compared": "B",
    "details": "provenance and method parameters (cache hits, KID subsets, k of precision/recall, ...)",
}


def _entry(name: str, entry: Any) -> dict[str, Any]:
    return {"name": name, "description": getattr(entry.cls, "description", "") or "",
            "distribution": entry.plugin.distribution, "version": entry.plugin.version}


def list_document(registry: Any) -> dict[str, Any]:
    """What ``genbench list --json`` prints (LIST_KEYS)."""
    import dataclasses

    models = []
    for name, entry in registry.models:
        cls = entry.cls
        config = {f.name: (f.default if f.default is not dataclasses.MISSING else
                           f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
                  for f in dataclasses.fields(cls.Config)}
        models.append({**_entry(name, entry), "likelihood": cls.likelihood, "supports_steps": bool(cls.supports_steps),
                       "role": cls.role, "presets": sorted(cls.presets), "config": config})
    datasets = []
    for name, entry in registry.datasets:
        spec = entry.cls.spec
        datasets.append({**_entry(name, entry), "shape": list(spec.shape) if spec is not None else None,
                         "levels": spec.levels if spec is not None else None,
                         "splits": dict(entry.cls.split_sizes) if entry.cls.split_sizes else None})
    plugins, seen = [], set()
    for info in registry.plugins.values():
        if (info.distribution, info.module) not in seen:
            seen.add((info.distribution, info.module))
            plugins.append({"distribution": info.distribution, "version": info.version, "module": info.module})
    return {"schema": SCHEMA_LIST, "models": models, "datasets": datasets,
            "metrics": [_entry(n, e) for n, e in registry.metrics],
            "extractors": [_entry(n, e) for n, e in registry.extractors],
            "loggers": [_entry(n, e) for n, e in registry.loggers], "plugins": plugins}


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dumps(payload: Any) -> str:
    return json.dumps(_plain(payload), indent=2, default=str, allow_nan=False) + "\n"


def write_json(payload: Any, target: str) -> None:
    """``payload`` as JSON to the file ``target`` (written atomically), or to standard output for ``-``."""
    text = dumps(payload)
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(Path(target), text)
