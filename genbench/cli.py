"""The ``genbench`` command: run, report, list."""
from __future__ import annotations

import dataclasses
import logging
import sys
import warnings
from pathlib import Path

import click

from genbench.config import ConfigError, parse_overrides
from genbench.data.base import DataError
from genbench.plugins import PluginConflictError, UnknownNameError, get_registry


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
              help="A grid file (TOML: models, datasets, seeds, preset, [set] overrides); flags given here override it.")
@click.option("--models", default=None, help="Comma-separated model names, or 'all' (required without --config).")
@click.option("--dataset", "datasets", default=None, help="Comma-separated data set names or paths (.npz file, image "
              "folder).  [default: digits]")
@click.option("--seeds", default=None, help="Comma-separated integer seeds.  [default: 0]")
@click.option("--preset", default=None, help="Config preset: tiny, quick, standard, ...  [default: quick]")
@click.option("--steps", type=int, default=None, help="Training budget in optimisation steps (overrides the preset).")
@click.option("--minutes", type=float, default=None, help="Training budget in minutes (overrides the preset).")
@click.option("--n-samples", type=int, default=None, help="Samples per sampler setting (overrides the preset).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="Where runs go.  [default: "
              "the grid's out, else reports]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--data-root", default=None, help="Where data-set files live (else each data set's default).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray), e.g. auto.")
@click.option("--extractors", default=None,
              help="Feature extractors for FID/KID/PR, comma-separated (default: the grid's, else $GENBENCH_EXTRACTORS "
                   "or classifier; e.g. classifier,inception).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(config_file, models, datasets, seeds, preset, steps, minutes, n_samples, sets, out_dir, device, data_root,
        executor, address, extractors, no_progress) -> None:
    """Train, sample and score every (model x data set x seed) cell."""
    from genbench.executors import run_local, run_ray
    from genbench.runner import CellSpec, Runner

    try:
        registry = get_registry()
        overrides = parse_overrides(sets)
        if steps is not None:
            overrides.update(max_steps=steps, max_minutes=None)
        if minutes is not None:
            overrides.update(max_minutes=minutes, **({} if steps is not None else {"max_steps": None}))
        if n_samples is not None:
            overrides["n_samples"] = n_samples
        model_names = None
        if models is not None:
            model_names = registry.models.names() if models.strip() == "all" else _split(models)
        if config_file is not None:
            cells, out_dir, extractor_names = _grid_cells(config_file, registry, model_names, datasets, seeds, preset,
                                                          extractors, out_dir, overrides)
        else:
            if model_names is None:
                _fail("give --models (comma-separated names, or 'all') or --config FILE.toml")
            out_dir = out_dir or "reports"
            extractor_names = _split(extractors) if extractors else None
            cells = [CellSpec(m, ds, s, preset or "quick", dict(overrides))
                     for ds in _split(datasets or "digits") for m in model_names for s in _seed_list(seeds or "0")]
        for name in extractor_names or []:
            registry.extractors.get(name)
        runner = Runner(out_dir, registry=registry, device=device, progress=not no_progress, data_root=data_root,
                        extractors=extractor_names)
        plans = [runner.plan(cell) for cell in cells]  # fail fast on bad names, presets, overrides before training
    except (UnknownNameError, ConfigError, DataError, PluginConflictError, ValueError) as exc:
        _fail(str(exc))

    def show(result) -> None:
        mark = {"done": "ok", "skipped": "cached", "failed": "FAILED"}[result.state]
        line = f"[{mark}] {result.spec.model} on {result.spec.dataset} seed {result.spec.seed} ({result.seconds:.1f}s)"
        if result.error:
            line += f": {result.error}"
        click.echo(line, err=result.state == "failed")

    if executor == "ray":
        kwargs = dict(out_dir=str(Path(out_dir).resolve()), device=device, data_root=data_root,
                      extractors=runner.extractors)
        results = run_ray(kwargs, cells, address=address, on_result=show)
    else:
        results = run_local(runner, plans, on_result=show)
    _print_summary(results)
    failed = [r for r in results if r.state == "failed"]
    click.echo(f"{len(results) - len(failed)} of {len(results)} cells finished; rows in {out_dir}/runs/. "
               f"Next: genbench report --out {out_dir}")
    if failed:
        sys.exit(1)


def _seed_list(text: str) -> list[int]:
    try:
        return [int(s) for s in _split(text)]
    except ValueError:
        raise ConfigError(f"--seeds takes comma-separated integers, got {text!r}") from None


def _grid_cells(path: str, registry, models: list[str] | None, datasets: str | None, seeds: str | None,
                preset: str | None, extractors: str | None, out_dir: str | None,
                overrides: dict[str, str]) -> tuple[list, str, list[str] | None]:
    """The cells of a grid file with the command line's flags on top: (cells, out folder, extractors)."""
    from genbench.grid import load_grid

    grid = load_grid(path)
    given: dict[str, object] = {}
    if models is not None:
        given["models"] = models
    if datasets is not None:
        given["datasets"] = _split(datasets)
    if seeds is not None:
        given["seeds"] = _seed_list(seeds)
    if preset is not None:
        given["preset"] = preset
    if extractors is not None:
        given["extractors"] = _split(extractors)
    if out_dir is not None:
        given["out"] = out_dir
    grid = dataclasses.replace(grid, **given)
    resolved = grid.resolved()
    if overrides:
        resolved = {**resolved, "command_line_overrides": dict(overrides)}
    cells = [dataclasses.replace(c, overrides={**c.overrides, **overrides}, grid=resolved)
             for c in grid.cell_specs(registry)]
    return cells, grid.out or "reports", list(grid.extractors) if grid.extractors else None


def _print_summary(results) -> None:
    import pandas as pd

    rows = [r for res in results for r in res.rows]
    if not rows:
        return
    df = pd.DataFrame(rows)
    keep = df[df["metric"].isin(["fid", "fid_floor", "bits_per_dim", "images_per_second", "nfe", "confident_share"])].copy()
    keep["metric"] = keep["metric"] + keep["kind"].fillna("").map(lambda k: f" ({k})" if k else "")
    table = keep.pivot_table(index=["model", "sampler"], columns="metric", values="value", aggfunc="mean")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        click.echo(table.to_string())


@main.command()
@click.option("--out", "reports_dir", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="The folder `genbench run --out` wrote to.")
@click.option("--to", "out_dir", default=None, type=click.Path(file_okay=False), help="Where to write (default: --out).")
@click.option("--runs", default=None, help="Only these run ids (comma-separated; shell patterns such as 'ddpm-*' allowed).")
@click.option("--models", default=None, help="Only these models (comma-separated; shell patterns allowed).")
@click.option("--dataset", "datasets", default=None, help="Only these data sets (comma-separated; shell patterns allowed).")
@click.option("--baseline", default=None, help="A model to show as a baseline row besides those whose rows say role=baseline "
              "(for runs written before rows carried a role).")
@click.option("--data-root", default=None, help="Where data-set files live (for the grids of real test images).")
def report(reports_dir, out_dir, runs, models, datasets, baseline, data_root) -> None:
    """Write index.html (self-contained) and results.csv/.md/.tex/.json from the stored runs."""
    import shlex

    from genbench.report import write_report

    if not (Path(reports_dir) / "runs").is_dir():
        _fail(f"no runs under {reports_dir}/runs; run `genbench run --models ...` first or pass --out")
    given = [("--out", reports_dir), ("--to", out_dir), ("--runs", runs), ("--models", models), ("--dataset", datasets),
             ("--baseline", baseline), ("--data-root", data_root)]
    command = " ".join(shlex.quote(a) for a in ["genbench", "report", *[x for k, v in given if v for x in (k, v)]])
    index = write_report(reports_dir, out_dir, _split(models) if models else None, _split(datasets) if datasets else None,
                         runs=_split(runs) if runs else None, baseline=baseline, data_root=data_root, command=command,
                         registry=get_registry())
    click.echo(f"wrote {index} (and results.csv, results.md, results.tex, results.json beside it)")


@main.command(name="list")
def list_() -> None:
    """Show models (with capabilities), data sets, metrics and plugin distributions."""
    try:
        registry = get_registry()
    except PluginConflictError as exc:
        _fail(str(exc))
    click.echo("Models:")
    for name, entry in registry.models:
        cls = entry.cls
        lik = f"likelihood={cls.likelihood}" if cls.likelihood else "likelihood=—"
        steps = "steps/NFE settable" if cls.supports_steps else "fixed NFE"
        click.echo(f"  {name:<16} {lik:<22} {steps:<19} presets={','.join(sorted(cls.presets))}  "
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
    click.echo("Plugins:")
    seen = set()
    for info in registry.plugins.values():
        key = (info.distribution, info.module)
        if key not in seen:
            seen.add(key)
            click.echo(f"  {info.distribution} {info.version}: {info.module}")


from genbench.cli_fid import fid_command  # noqa: E402  (the `genbench fid` command lives in its own module)

main.add_command(fid_command)


if __name__ == "__main__":
    main()
