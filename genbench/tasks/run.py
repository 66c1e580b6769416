"""Run a task on a trained cell: load its checkpoint (never retrain), corrupt test images, restore, score.

The checkpoint is the one the cell's samples came from: ``checkpoints/best.pt`` (validation-selected, models
with a likelihood) if present, else ``checkpoints/last.pt``.  Rows are the cell's tidy rows (``results.py``)
plus ``task`` and ``mask`` fields (``mask`` is the setting: the mask, noise level or grey rule, then the
``--task-set`` options the model took, ``genbench.tasks.options``; the details record the method and its options,
defaults included), written to ``<run>/tasks/<task>-<setting>/rows.json`` beside a before/after
grid (``grid.png``: input with the unknown region in red, completions, truth).  Restorations are quantised to
the data's levels once, as samples are.  Seeds: the corruption from (cell seed, task, setting), completion k
from (cell seed, task, setting, k): a rerun writes the same rows.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from genbench.io import atomic_write_bytes, atomic_write_json, load_checkpoint
from genbench.metrics.base import EvalContext, Measurement
from genbench.model import GenerativeModel
from genbench.naming import safe_name
from genbench.progress import current as current_progress
from genbench.results import measurement_row
from genbench.tasks.ambiguity import known_part_conditional, reference_rows
from genbench.tasks.base import Corrupted, Task, task_seed
from genbench.tasks.metrics import class_agreement, diversity, error_rows
from genbench.tasks.options import apply_task_options, check_task_sets, parse_task_sets
from genbench.tasks.retrieval import retrieval_complete

log = logging.getLogger("genbench")

__all__ = ["TASK_COLUMNS", "TaskOptions", "build_task", "evaluate_task", "load_trained", "run_task", "task_rows"]


@dataclass(frozen=True)
class TaskOptions:
    """How much to measure: ``n_images`` test images restored once each; ``completions`` restorations of the
    first ``diversity_inputs`` of them for the diversity score and the grid; ``batch_size`` images per call."""

    n_images: int = 100
    completions: int = 4
    diversity_inputs: int = 10
    batch_size: int = 100
    #: completion tasks on labelled data: also fit the known-part classifier of ``genbench.tasks.ambiguity``
    #: (cached per data set and mask) for the ``class_agreement_known_only`` / ``_sampler_ceiling`` rows
    ambiguity: bool = True


#: what the ``*_retrieval`` rows are (``genbench.tasks.retrieval``): the same for every model of a data set
RETRIEVAL = ("retrieval reference: the unknown region copied from the training image nearest on the known "
             "sub-pixels (Hays & Efros 2007)")


class NoCheckpoint(FileNotFoundError):
    """The cell has no checkpoint to restore with; the message says to run it first."""


def load_trained(model_cls: type[GenerativeModel], config: Any, spec: Any, run_dir: Path,
                 device: torch.device) -> GenerativeModel:
    """The cell's trained model from ``best.pt`` if present, else ``last.pt`` (weights_only loads)."""
    ckpt = run_dir / "checkpoints"
    path = next((p for p in (ckpt / "best.pt", ckpt / "last.pt") if p.exists()), None)
    if path is None:
        raise NoCheckpoint(f"{run_dir.name} has no checkpoints/best.pt or last.pt; run the cell first "
                           "(genbench run without --task)")
    model = model_cls(config, spec, device)
    model.load_state_dict(load_checkpoint(path, device)["model"])
    model.train(False)
    log.info("task: loaded %s (step %d)", path, model.step)
    return model


def _restore(task: Task, model: GenerativeModel, corrupted: Corrupted, seed: int, k: int, batch: int) -> Tensor:
    gen = torch.Generator().manual_seed(task_seed(seed, task.name, task.label, "restore", k))
    spec = model.data
    out = []
    for i in range(0, len(corrupted.truth), batch):
        part = Corrupted(corrupted.observed[i : i + batch], corrupted.known[i : i + batch],
                         corrupted.truth[i : i + batch], corrupted.params)
        with torch.no_grad():
            x = task.restore(model, part, gen).detach().float().cpu()
        out.append(spec.to_unit(spec.quantise(x)))  # the one quantisation, as for samples
        current_progress().update(min(i + batch, len(corrupted.truth)))  # the cell's progress (genbench.progress)
    return torch.cat(out)


def summarise_diagnostics(diagnostics: dict[str, list[float]]) -> dict[str, float]:
    """Per-image values a restoration method reported (``restoration_diagnostics``) as the rows' details: the
    median and the minimum over the images of each, e.g. ``effective_sample_size_median``."""
    out: dict[str, float] = {}
    for name, values in sorted(diagnostics.items()):
        if values:
            t = torch.tensor(values, dtype=torch.float64)
            out[f"{name}_median"] = round(float(t.median()), 3)
            out[f"{name}_min"] = round(float(t.min()), 3)
    return out


def evaluate_task(model: GenerativeModel, task: Task, ctx: EvalContext,
                  options: TaskOptions = TaskOptions()) -> tuple[list[Measurement], dict[str, Tensor]]:
    """Measurements of ``task`` on ``model`` over the first ``n_images`` test images, and the grid's tensors.
    A model that cannot do the task gives one "supported" row of 0 with the reason (nothing raises)."""
    data = ctx.data
    n = min(options.n_images, len(data.test))
    truth = data.unit("test")[:n]
    corrupted = task.corrupt(truth, ctx.seed)
    taken = apply_task_options(model, task.options, task.capability)  # --task-set values this model takes
    base = {"task": task.name, "setting": task.setting(taken), **corrupted.params}
    reason = task.unsupported(model, corrupted)
    if reason is not None:
        return [Measurement("supported", 0.0, "", None, n=0, details={**base, "reason": reason})], {}
    base.update(task.details(model, corrupted))  # e.g. RePaint's r and j, the PixelCNN's method
    progress = current_progress()
    progress.phase(f"task {task.name} {task.label}: restoring", total=n, unit="image")
    model.restoration_diagnostics = {}  # what the method reports per image (e.g. importance resampling's ESS)
    t0 = time.perf_counter()
    restored = _restore(task, model, corrupted, ctx.seed, 0, options.batch_size)
    seconds = time.perf_counter() - t0
    base.update(summarise_diagnostics(model.restoration_diagnostics))
    rows = [Measurement("supported", 1.0, "", None, n=n, details=base)]
    rows += error_rows(truth, restored, corrupted.known, base)
    rows.append(Measurement("seconds_per_image", seconds / n, "s", False, n=n,
                            details={**base, "batch_size": options.batch_size, "device": str(ctx.device)}))
    nfe = task.nfe(model, corrupted)
    if nfe is not None:
        rows.append(Measurement("nfe", float(nfe), "evaluations", False, n=n, details=base))
    m = min(options.diversity_inputs, n)
    sub = Corrupted(corrupted.observed[:m], corrupted.known[:m], truth[:m], corrupted.params)
    extra = [restored[:m]]
    for k in range(1, options.completions):
        progress.phase(f"task {task.name} {task.label}: completion {k + 1} of {options.completions} (diversity)",
                       total=m, unit="image")
        extra.append(_restore(task, model, sub, ctx.seed, k, options.batch_size))
    progress.phase(f"task {task.name} {task.label}: scoring")
    completions = torch.stack(extra)
    if options.completions > 1:
        rows.append(Measurement("diversity", diversity(completions), "[0,1] rms", None, n=m,
                                details={**base, "completions": options.completions}))
    retrieved = None
    if task.capability == "complete" and bool(corrupted.known.any()):
        retrieved = retrieval_complete(corrupted.observed, corrupted.known, data.unit("train"))
        ref = {**base, "reference": RETRIEVAL}
        rows += [Measurement(f"{r.metric}_retrieval", r.value, r.unit, r.higher_is_better, n=r.n, stderr=r.stderr,
                             details=ref) for r in error_rows(truth, retrieved, corrupted.known, ref)
                 if r.metric.endswith("_unknown")]
    if data.has_labels and "classifier" in ctx.extractor_names:
        ext = ctx.extractor("classifier")
        if ext.accuracy is not None:
            labels = data.test_labels[:n]
            common = dict(extractor=ext.name, extractor_sha256=ext.sha256, n=n)
            scored = [("class_agreement", restored, "share labelled with the original's label"),
                      ("class_agreement_floor", truth, "the classifier's accuracy on the uncorrupted images")]
            if retrieved is not None:
                scored.append(("class_agreement_retrieval", retrieved, RETRIEVAL))
            for name, images, meaning in scored:
                p, se = class_agreement(ext.probabilities(images), labels)
                rows.append(Measurement(name, p, "fraction", True, stderr=se, details={**base, "meaning": meaning},
                                        **common))
            if retrieved is not None and options.ambiguity and task.mask is not None:
                progress.phase(f"task {task.name} {task.label}: known-part classifier (fitted once, then cached)")
                reference = known_part_conditional(data, task.mask, ctx.cache_dir, ctx.device)
                q = reference.probabilities(corrupted.observed, corrupted.known)
                for name, value, se, meaning in reference_rows(q, labels):
                    rows.append(Measurement(name, value, "fraction", True, n=n, stderr=se,
                                            details={**base, "meaning": meaning, **reference.details}))
    if n >= 2:
        from genbench.metrics.features import stream_features, tensor_batches
        from genbench.metrics.stats import fid_from_stats

        for ext_name in ctx.extractor_names:
            ext = ctx.extractor(ext_name)
            ref = ctx.reference_features(ext)
            for name, images in (("restored_fid", restored), ("restored_fid_floor", truth)):
                feats = stream_features(ext, tensor_batches(images, 4 * ext.batch_size), keep=False)
                rows.append(Measurement(name, fid_from_stats(ref.stats, feats.stats), n=n,
                                        details={**base, "n_reference": ref.n}, **ctx.row_fields(ext, "", False)))
    observed = corrupted.observed[:m]
    return rows, {"observed": observed, "known": corrupted.known[:m], "completions": completions, "truth": truth[:m]}


#: the columns a task row has besides the tidy rows' (``results.COLUMNS``)
TASK_COLUMNS = ["task", "mask"]


def task_rows(measurements: list[Measurement], cell: dict[str, Any], task: Task,
              setting: str | None = None) -> list[dict[str, Any]]:
    """Tidy rows (``results.measurement_row``) with the task's name and setting (``task``, ``mask``: the label,
    or ``setting`` when given, i.e. with the ``--task-set`` options the model took) added."""
    rows = []
    for m in measurements:
        row = measurement_row(m, cell)
        row["task"] = task.name
        row["mask"] = task.label if setting is None else setting
        rows.append(row)
    return rows


def grid_png(grid: dict[str, Tensor], levels: int) -> bytes:
    """A PNG: one row per input, columns = input (unknown sub-pixels red), the completions, the truth."""
    import torchvision.utils as vutils

    observed, known, completions, truth = grid["observed"], grid["known"], grid["completions"], grid["truth"]
    rgb = lambda x: x.clamp(0, 1).expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.clamp(0, 1)  # noqa: E731
    shown = rgb(observed).clone()
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand_as(shown)
    if bool(known.any()):
        shown = torch.where(known.expand_as(shown), shown, red)
    columns = [shown, *[rgb(c) for c in completions], rgb(truth)]
    tiles = torch.stack(columns, 1).flatten(0, 1)
    # nearest-neighbour upscaling: at least 3x, and small images (8x8 digits) at >= 32 pixels
    scale = max(3, -(-32 // tiles.shape[-2]))
    tiles = tiles.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    image = vutils.make_grid(tiles, nrow=len(columns), padding=1, pad_value=1.0)
    png = io.BytesIO()
    vutils.save_image(image, png, format="png")
    return png.getvalue()


def run_task(plan: Any, run_dir: Path, task: Task, ctx_args: dict[str, Any],
             options: TaskOptions = TaskOptions()) -> list[dict[str, Any]]:
    """Run ``task`` on the finished cell ``plan`` in ``run_dir``: rows (also written to the task's folder).

    ``ctx_args``: device, cache_dir, registry, extractor_names (as the runner's ``EvalContext`` gets them)."""
    spec = plan.spec
    task.check_data(plan.data.spec)
    model = load_trained(plan.model_cls, plan.config, plan.data.spec, run_dir, ctx_args["device"])
    ctx = EvalContext(model=model, data=plan.data, samples=[], seed=spec.seed, **ctx_args)
    measurements, grid = evaluate_task(model, task, ctx, options)
    setting = task.setting(model.restoration_options)  # the --task-set values evaluate_task gave the model
    cell = {"run_id": plan.run_id, "model": spec.model, "role": plan.model_cls.role, "dataset": spec.dataset,
            "seed": spec.seed, "preset": spec.preset, "split": plan.data.split_id, "config_hash": plan.config_hash,
            "device": str(ctx.device), "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": plan.versions}
    rows = task_rows(measurements, cell, task, setting)
    folder = run_dir / "tasks" / safe_name(f"{task.name}-{setting}" if setting else task.name)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "rows.json", rows)
    if grid:
        atomic_write_bytes(folder / "grid.png", grid_png(grid, plan.data.spec.levels))
    return rows


def build_task(registry: Any, name: str | None, mask: str | None, sigma: float | None, specs: list[Any],
               task_sets: Sequence[str] = (), model_classes: Sequence[type] = ()) -> Task | None:
    """The task ``genbench run --task NAME [--mask M] [--sigma S] [--task-set KEY=VALUE ...]`` asks for, checked
    against every planned data set and model class before any work starts (one-line errors: unknown names with
    did-you-mean, bad masks, colourise on grey data, options no model takes or out of range:
    ``genbench.tasks.options``); None without ``--task``."""
    from genbench.tasks.base import TaskError

    if name is None:
        if mask is not None or sigma is not None or task_sets:
            raise TaskError("--mask, --sigma and --task-set go with --task (e.g. --task inpaint --mask bottom-half)")
        return None
    cls = registry.tasks.get(name)  # UnknownNameError with did-you-mean
    task = cls(mask=mask, **({} if sigma is None else {"sigma": sigma}))
    for spec in specs:
        task.check_data(spec)
    task.options = check_task_sets(parse_task_sets(task_sets), task.name, task.capability, model_classes)
    return task


def run_tasks(runner: Any, plans: list[Any], results: list[Any], task: Task, options: TaskOptions,
              echo: Any = print) -> list[dict[str, Any]]:
    """``task`` on every finished cell of the grid (its checkpoint, no retraining); one line per cell."""
    by_id = {p.run_id: p for p in plans}
    ctx_args = dict(device=runner.device, cache_dir=runner.cache_dir, registry=runner.registry,
                    extractor_names=list(runner.extractors))
    rows: list[dict[str, Any]] = []
    for result in results:
        plan = by_id.get(result.run_dir.name) if result.run_dir is not None else None
        where = f"{result.spec.model} on {result.spec.dataset} seed {result.spec.seed}"
        if plan is None or result.state == "failed":
            echo(f"[task {task.name}] {where}: skipped (the cell did not finish)")
            continue
        progress = runner.cell_progress(plan)
        try:
            with progress.active():
                cell_rows = run_task(plan, result.run_dir, task, ctx_args, options)
            progress.done()
        except Exception as exc:  # a task failure never loses the cell's rows
            log.exception("task %s on %s failed", task.name, plan.run_id)
            echo(f"[task {task.name}] {where}: FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        rows += cell_rows
        echo(f"[task {task.name}] {where}: {summary_line(cell_rows)}")
    return rows


def summary_line(rows: list[dict[str, Any]]) -> str:
    """The few numbers of a cell's task rows on one line, or "not supported: reason"."""
    by = {r["metric"]: r for r in rows}
    sup = by.get("supported")
    if sup is not None and not sup["value"]:
        return f"not supported ({json.loads(sup['details']).get('reason', '')})"
    parts = []
    for metric, title, fmt in (("class_agreement", "class agreement", "{:.3f}"),
                               ("class_agreement_retrieval", "(nearest training image", "{:.3f})"),
                               ("class_agreement_sampler_ceiling", "(exact sampler about", "{:.3f})"),
                               ("psnr_unknown", "PSNR unknown",
                               "{:.2f} dB"), ("mse_known", "MSE known", "{:.2g}"), ("diversity", "diversity", "{:.3f}"),
                               ("seconds_per_image", "s/image", "{:.3g}"), ("nfe", "NFE", "{:.0f}")):
        if metric in by and by[metric]["value"] is not None:
            parts.append(f"{title} " + fmt.format(by[metric]["value"]))
    return ", ".join(parts).replace(", (", " (")
