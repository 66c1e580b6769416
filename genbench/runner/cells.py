"""One cell = (model, data set, seed, config): plan -> train -> checkpoint -> sample -> score -> rows.

The runner owns everything that must be the same for every model: seeding, the
batch order, the training budget, validation-based checkpoint selection for
models with a likelihood, timing, quantisation of samples to the data's levels
(exactly once), and the tidy rows.  A cell's folder ``reports/runs/<run_id>/``
holds its resolved config, status, rows, samples, checkpoints, curves and log;
the run id is derived from the config hash, so a rerun skips finished work and
resumes an interrupted one from its last checkpoint.

This module orchestrates; the training loop is in ``training.py``, drawing samples in
``sampling.py``, sample metrics during training in ``curves.py``, devices, kernels
and random state in ``device.py``.  A cell changes global state only inside itself:
cuDNN flags and every global random state are put back when it ends.

One process writes a run folder at a time (``genbench.locks.RunLock``); a second one waits up to
``lock_wait`` seconds, then the cell is refused with a line naming the writer.  With ``cell_timeout`` each
cell runs in a child process (``isolated.py``) that is killed when the time is up.  A failed cell's
traceback goes to its log.txt only; the terminal gets its one-line error.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import platform
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import genbench
from genbench.config import config_hash, resolve_config
from genbench.data.base import DataSplits
from genbench.data.files import resolve_dataset
from genbench.io import atomic_write_json
from genbench.locks import RunFolderBusy, RunLock
from genbench.metrics.base import EvalContext, Measurement, default_extractor_names
from genbench.metrics.likelihood import likelihood_images
from genbench.model import GenerativeModel, ModelConfig
from genbench.naming import safe_name
from genbench.plugins import Registry
from genbench.progress import DEFAULT_EVERY, Progress, resolve_mode
from genbench.provenance import code_commit
from genbench.runner.curves import sample_scorer
from genbench.runner.device import deterministic_kernels, pick_device, preserved_rng, seed_everything
from genbench.runner.compiled_sampling import check_compile_sampler
from genbench.runner.precision import compile_networks, intra_op_threads, resolve_precision, resolve_threads
from genbench.runner.from_checkpoint import load_weights, read_checkpoint
from genbench.runner.from_checkpoint import prepare as prepare_checkpoint
from genbench.runner.sampling import draw_samples, save_grid
from genbench.runner.scoring import data_measurements, machine_fields, metric_measurements, write_rows
from genbench.runner.training import CHECKPOINT_EVERY_SECONDS, CHECKPOINT_EVERY_STEPS, Trainer
from genbench.trackers import build_trackers, sample_grids

log = logging.getLogger("genbench")


@dataclass(frozen=True)
class CellSpec:
    """What to run: a model on a data set with a seed, a preset and config overrides.

    ``grid`` is the resolved grid file the cell came from (``genbench run --config``), written to the
    run's config.json; it is not part of the cell's identity, so it never changes a run id.
    """

    model: str
    dataset: str = "digits"
    seed: int = 0
    preset: str = "quick"
    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] | None = field(default=None, compare=False)
    checkpoint: str | None = None  # genbench run --checkpoint: score these weights, no training (from_checkpoint.py)


@dataclass
class CellPlan:
    """A cell resolved once: model class, config, data, and its identity (what the run id hashes)."""

    spec: CellSpec
    model_cls: type[GenerativeModel]
    config: ModelConfig
    data: DataSplits
    run_id: str
    identity: dict[str, Any]
    config_hash: str
    versions: dict[str, str]


@dataclass
class CellResult:
    spec: CellSpec
    state: str  # done | failed | skipped
    run_dir: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    traceback: str = ""  # of a failed cell (also in its log.txt); shown on the terminal only with --debug


def _versions(model_cls: type, registry: Registry) -> dict[str, str]:
    entry = registry.models.entries.get(model_cls.name)
    out = {"genbench": genbench.__version__, "torch": torch.__version__, "python": platform.python_version()}
    if entry is not None:
        out["plugin"] = f"{entry.plugin.distribution} {entry.plugin.version}".strip()
    return out


@functools.cache
def _loaded_commit() -> str:
    """The commit of the code this process runs (asked once: edits on disk after the import do not change it)."""
    return code_commit()


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable (cut, empty, garbage)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finished_rows(run_dir: Path, config_hash: str, warn: bool = True) -> list[dict[str, Any]] | None:
    """The rows of a finished cell with this config hash, or None (not finished, or its files damaged)."""
    status = read_json_or_none(run_dir / "status.json")
    if not isinstance(status, dict) or status.get("state") != "done" or status.get("config_hash") != config_hash:
        return None
    rows = read_json_or_none(run_dir / "rows.json")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        if warn:
                log.warning("%s says done but %s is unreadable; the cell is run again", run_dir / "status.json",
                        run_dir / "rows.json")
        return None
    return rows


def _to_file_only(handler: logging.Handler, level: int, message: str) -> None:
    """A record for the cell's log.txt alone (not propagated to the terminal's handlers)."""
    handler.handle(log.makeRecord(log.name, level, __file__, 0, message, (), None))


def _remove_partial_writes(run_dir: Path) -> None:
    """Temporary files a killed writer left behind (``atomic_write_bytes`` names them ``.<name>.*.tmp``)."""
    for tmp in run_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class Runner:
    """Runs cells into ``out_dir/runs`` with the models, data sets, metrics and extractors of ``registry``;
    data sets are loaded once per runner.  Constructing one changes no global state."""

    def __init__(
        self,
        out_dir: str | Path,
        registry: Registry,
        device: str = "auto",
        progress: bool | str = True,
        data_root: str | None = None,
        cache_dir: str | Path | None = None,
        extractors: list[str] | None = None,
        checkpoint_every_steps: int | None = CHECKPOINT_EVERY_STEPS,
        checkpoint_every_seconds: float | None = CHECKPOINT_EVERY_SECONDS,
        lock_wait: float = 0.0,
        cell_timeout: float | None = None,
        status_extra: dict[str, Any] | None = None,
        trackers: list[str] | None = None,
        threads: int | str | None = None,
        compile: bool = False,
        progress_every: float = DEFAULT_EVERY,
    ) -> None:
        # what a child process needs to build the same runner (``isolated.py``)
        self.progress = resolve_mode(progress)  # what the terminal gets: genbench.progress (bars, lines, ...)
        self.progress_every = progress_every  # seconds between two progress lines off a terminal (and in log.txt)
        self.options = dict(out_dir=str(out_dir), device=device, progress=self.progress, data_root=data_root,
                            cache_dir=None if cache_dir is None else str(cache_dir), extractors=extractors,
                            checkpoint_every_steps=checkpoint_every_steps,
                            checkpoint_every_seconds=checkpoint_every_seconds, lock_wait=lock_wait,
                            status_extra=status_extra, trackers=trackers, threads=threads, compile=compile,
                            progress_every=progress_every)
        # intra-op threads of every cell: None keeps the process's setting, "auto" the cores this process may use
        # (cgroup-aware, genbench run's default), an int that many; recorded in every row (threads)
        self.threads = None if threads is None else resolve_threads(threads)
        self.compile = compile  # torch.compile the model's networks (--compile)
        self.checkpoint_every_steps = checkpoint_every_steps
        self.checkpoint_every_seconds = checkpoint_every_seconds
        self.lock_wait = lock_wait
        self.cell_timeout = cell_timeout
        self.status_extra = dict(status_extra or {})  # e.g. the Ray node, recorded in status.json while running
        self.out_dir = Path(out_dir)
        self.extractors = list(extractors) if extractors else default_extractor_names()
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.registry = registry
        self.trackers = build_trackers(list(trackers or []), registry, out_dir)  # genbench run --log
        self.device = pick_device(device)
        self.data_root = data_root
        self._data: dict[str, DataSplits] = {}

    def track(self, method: str, *args: Any) -> None:
        """Tell the run's experiment trackers (``genbench.trackers``): start_cell, log_scalars, log_images,
        log_rows or end_cell."""
        if self.trackers:
            self.trackers.call(method, *args)

    @property
    def cache_dir(self) -> Path:
        """Feature-extractor and reference-statistics cache (default ``out_dir/cache``)."""
        return self._cache_dir or self.out_dir / "cache"

    def load_data(self, name_or_path: str) -> DataSplits:
        if name_or_path not in self._data:
            self._data[name_or_path] = resolve_dataset(name_or_path, self.registry, self.data_root).load()
        return self._data[name_or_path]

    # ------------------------------------------------------------------ planning
    def plan(self, spec: CellSpec) -> CellPlan:
        """Resolve model class, config, data and the cell's identity (raises one-line errors)."""
        model_cls = self.registry.models.get(spec.model)
        data = self.load_data(spec.dataset)
        config = resolve_config(model_cls, spec.preset, data.spec, spec.overrides)
        config.precision = resolve_precision(config.precision, self.device)  # auto -> what this device runs
        config.compile_sampler = check_compile_sampler(config.compile_sampler, model_cls)
        identity = {
            "model": spec.model, "dataset": spec.dataset, "split": data.split_id, "data_hash": data.data_hash,
            "seed": spec.seed, "preset": spec.preset, "config": config.to_dict(), "device": self.device.type,
            "extractors": self.extractors,
        }
        if spec.checkpoint is not None:  # its sha256 enters the identity: another run id than a trained cell's
            identity["checkpoint"] = prepare_checkpoint(spec.checkpoint, model_cls, config, data.spec, spec.dataset).identity()
        digest = config_hash(identity)
        dataset_tag = Path(spec.dataset).stem if "/" in spec.dataset or spec.dataset.endswith(".npz") else spec.dataset
        run_id = f"{safe_name(spec.model)}-{safe_name(dataset_tag)}-s{spec.seed}-{digest[:10]}"
        return CellPlan(spec, model_cls, config, data, run_id, identity, digest, _versions(model_cls, self.registry))

    # ------------------------------------------------------------------ one cell
    def run_cell(self, cell: CellSpec | CellPlan) -> CellResult:
        """Run a cell (planning it first when given a spec); errors are recorded, never raised."""
        start = time.perf_counter()
        spec = cell.spec if isinstance(cell, CellPlan) else cell
        try:
            plan = cell if isinstance(cell, CellPlan) else self.plan(cell)
        except Exception as exc:
            return CellResult(spec, "failed", None, error=_first_line(exc), seconds=time.perf_counter() - start,
                              traceback=traceback.format_exc())
        run_dir = self.out_dir / "runs" / plan.run_id
        rows = finished_rows(run_dir, plan.config_hash)
        if rows is not None:
            return CellResult(spec, "skipped", run_dir, rows=rows, seconds=time.perf_counter() - start)
        if self.cell_timeout is not None:
            from genbench.runner.isolated import run_isolated

            return run_isolated(self, plan, run_dir, start)
        try:
            lock = RunLock(run_dir, wait=self.lock_wait).acquire()
        except (RunFolderBusy, OSError) as exc:
            return CellResult(spec, "failed", run_dir, error=str(exc) if isinstance(exc, RunFolderBusy) else
                              _first_line(exc), seconds=time.perf_counter() - start, traceback=traceback.format_exc())
        try:
            rows = finished_rows(run_dir, plan.config_hash, warn=False)  # another writer may have finished it
            if rows is not None:
                return CellResult(spec, "skipped", run_dir, rows=rows, seconds=time.perf_counter() - start)
            return self._run_locked(plan, run_dir, start)
        finally:
            lock.release()

    def _run_locked(self, plan: CellPlan, run_dir: Path, start: float) -> CellResult:
        spec = plan.spec
        status_path = run_dir / "status.json"
        _remove_partial_writes(run_dir)
        handler = logging.FileHandler(run_dir / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.setLevel(logging.INFO)
        log.addHandler(handler)
        base_status = {
            "run_id": plan.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed,
            "preset": spec.preset, "config_hash": plan.config_hash, **self.status_extra,
        }
        try:
            config_json = {"identity": plan.identity, "config_hash": plan.config_hash, "versions": plan.versions,
                           "commit": _loaded_commit()}
            if spec.grid is not None:
                config_json["grid"] = spec.grid
            if plan.model_cls.preset_note(spec.preset):
                config_json["preset_note"] = plan.model_cls.preset_note(spec.preset)
            atomic_write_json(run_dir / "config.json", config_json)
            self.track("start_cell", plan.run_id, config_json)
            atomic_write_json(status_path, {**base_status, "state": "running", "pid": os.getpid(),
                                            "host": socket.gethostname()})
            log.info("cell %s started (pid %d)", plan.run_id, os.getpid())
            progress = self.cell_progress(plan)
            threads = intra_op_threads(self.threads) if self.threads is not None else contextlib.nullcontext()
            with deterministic_kernels(self.device), preserved_rng(), progress.active(), threads:
                rows = self._execute(plan, run_dir, progress)
            progress.done()
            atomic_write_json(status_path, {**base_status, "state": "done"})
            log.info("cell %s done", plan.run_id)
            self.track("end_cell", "done")
        except KeyboardInterrupt:
            atomic_write_json(status_path, {**base_status, "state": "interrupted"})
            self.track("end_cell", "interrupted")
            raise
        except Exception as exc:
            error, trace = _first_line(exc), traceback.format_exc()
            _to_file_only(handler, logging.ERROR, f"cell {plan.run_id} failed: {error}\n{trace}")
            atomic_write_json(status_path, {**base_status, "state": "failed", "error": error})
            self.track("end_cell", "failed")
            return CellResult(spec, "failed", run_dir, error=error, seconds=time.perf_counter() - start,
                              traceback=trace)
        finally:
            log.removeHandler(handler)
            handler.close()
        return CellResult(spec, "done", run_dir, rows=rows, seconds=time.perf_counter() - start)

    def cell_progress(self, plan: CellPlan) -> Progress:
        """The cell's progress reporter, its lines labelled ``[model dataset sSEED]``."""
        spec = plan.spec
        dataset = Path(spec.dataset).stem if "/" in spec.dataset or spec.dataset.endswith(".npz") else spec.dataset
        return Progress(f"{spec.model} {dataset} s{spec.seed}", self.progress, every=self.progress_every)

    def _execute(self, plan: CellPlan, run_dir: Path, progress: Progress) -> list[dict[str, Any]]:
        spec, config, data = plan.spec, plan.config, plan.data
        progress.phase(f"data {spec.dataset}: {len(data.train)} train, {len(data.val)} validation, "
                       f"{len(data.test)} test images")
        seed_everything(spec.seed)
        model = plan.model_cls(config, data.spec, self.device)
        if self.compile:
            log.info("torch.compile: %s", ", ".join(compile_networks(model)) or "no networks")
        ctx = EvalContext(model=model, data=data, samples=[], device=self.device, cache_dir=self.cache_dir,
                          seed=spec.seed, registry=self.registry, extractor_names=list(self.extractors))
        scorer = sample_scorer(ctx, config, self.extractors[0]) if config.sample_every else None
        trainer = Trainer(model, data, config, spec.seed, run_dir, self.device, progress, sample_scorer=scorer,
                          checkpoint_every_steps=self.checkpoint_every_steps,
                          checkpoint_every_seconds=self.checkpoint_every_seconds,
                          on_curve=(lambda step, values: self.track("log_scalars", step, values)) if self.trackers else None)
        if spec.checkpoint is not None:  # genbench run --checkpoint: its weights, no training
            ckpt = read_checkpoint(spec.checkpoint)
            load_weights(model, ckpt)
            trainer.seconds, trainer.steps_trained = ckpt.seconds, ckpt.step
            trainer.best_val, trainer.best_step = ckpt.validation
            trainer.best_val_stderr = float(ckpt.blob.get("best_val_stderr", float("nan")))
            log.info("scoring %s (step %d) without training", spec.checkpoint, ckpt.step)
        else:
            trainer.train()
        save_grid(data.test[:100], run_dir / "real_test.png", data.spec)
        ctx.samples = draw_samples(model, data, config, spec.seed, self.device, run_dir)
        if self.trackers:
            self.track("log_images", trainer.steps_trained, sample_grids(run_dir))
        ctx.train_seconds, ctx.train_steps = trainer.seconds, trainer.steps_trained
        measurements: list[Measurement] = []
        if trainer.best_val is not None:
            measurements.append(Measurement(
                "val_bits_per_dim", trainer.best_val, "bits/dim", False, kind=plan.model_cls.likelihood or "",
                n=len(likelihood_images(data, "val", config)), reference="validation",
                details={"selected_step": trainer.best_step},
                stderr=trainer.best_val_stderr if math.isfinite(trainer.best_val_stderr) else None,
            ))
        measurements += data_measurements(ctx) + metric_measurements(ctx)  # runner/scoring.py (genbench eval too)
        progress.phase("writing rows")
        cell = {
            "run_id": plan.run_id, "model": spec.model, "role": plan.model_cls.role, "dataset": spec.dataset,
            "seed": spec.seed, "preset": spec.preset, "split": data.split_id, "config_hash": plan.config_hash,
            "precision": config.precision, **machine_fields(self.device), "versions": plan.versions,
        }
        rows = write_rows(run_dir, measurements, cell)
        self.track("log_rows", trainer.steps_trained, rows)
        return rows
