"""The ``genbench`` command: run, report, list."""
from __future__ import annotations

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
    warnings.simplefilter("default")


@main.command()
@click.option("--models", required=True, help="Comma-separated model names, or 'all'.")
@click.option("--dataset", "datasets", default="digits", show_default=True,
              help="Comma-separated data set names or paths (.npz file, PNG folder).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated integer seeds.")
@click.option("--preset", default="quick", show_default=True, help="Config preset: tiny, quick, standard, ...")
@click.option("--steps", type=int, default=None, help="Training budget in optimisation steps (overrides the preset).")
@click.option("--minutes", type=float, default=None, help="Training budget in minutes (overrides the preset).")
@click.option("--n-samples", type=int, default=None, help="Samples per sampler setting (overrides the preset).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--data-root", default=None, help="Where data-set files live (else each data set's default).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray), e.g. auto.")
@click.option("--extractors", default=None,
              help="Feature extractors for FID/KID/PR, comma-separated (default: $GENBENCH_EXTRACTORS or classifier; "
                   "e.g. classifier,inception).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(models, datasets, seeds, preset, steps, minutes, n_samples, sets, out_dir, device, data_root, executor,
        address, extractors, no_progress) -> None:
    """Train, sample and score every (model x data set x seed) cell."""
    from genbench.executors import run_local, run_ray
    from genbench.runner import CellSpec, Runner

    try:
        registry = get_registry()
        names = registry.models.names() if models.strip() == "all" else _split(models)
        for name in names:
            registry.models.get(name)
        seed_list = [int(s) for s in _split(seeds)]
        overrides = parse_overrides(sets)
        if steps is not None:
            overrides.update(max_steps=steps, max_minutes=None)
        if minutes is not None:
            overrides.update(max_minutes=minutes, **({} if steps is not None else {"max_steps": None}))
        if n_samples is not None:
            overrides["n_samples"] = n_samples
        extractor_names = _split(extractors) if extractors else None
        for name in extractor_names or []:
            registry.extractors.get(name)
        runner = Runner(out_dir, registry=registry, device=device, progress=not no_progress, data_root=data_root,
                        extractors=extractor_names)
        for ds in _split(datasets):
            runner.load_data(ds)
        cells = [CellSpec(m, ds, s, preset, dict(overrides)) for ds in _split(datasets) for m in names for s in seed_list]
        for cell in cells:  # fail fast on bad presets/overrides before any training
            runner.plan(cell)
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
        results = run_local(runner, cells, on_result=show)
    _print_summary(results)
    failed = [r for r in results if r.state == "failed"]
    click.echo(f"{len(results) - len(failed)} of {len(results)} cells finished; rows in {out_dir}/runs/. "
               f"Next: genbench report --out {out_dir}")
    if failed:
        sys.exit(1)


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
@click.option("--baseline", default="independent", show_default=True, help="The model shown as the reference baseline row.")
@click.option("--data-root", default=None, help="Where data-set files live (for the grids of real test images).")
def report(reports_dir, out_dir, runs, models, datasets, baseline, data_root) -> None:
    """Write index.html (self-contained) and results.csv/.md/.tex/.json from the stored runs."""
    import shlex

    from genbench.report import write_report

    if not (Path(reports_dir) / "runs").is_dir():
        _fail(f"no runs under {reports_dir}/runs; run `genbench run --models ...` first or pass --out")
    given = [("--out", reports_dir), ("--to", out_dir), ("--runs", runs), ("--models", models), ("--dataset", datasets),
             ("--baseline", None if baseline == "independent" else baseline), ("--data-root", data_root)]
    command = " ".join(shlex.quote(a) for a in ["genbench", "report", *[x for k, v in given if v for x in (k, v)]])
    index = write_report(reports_dir, out_dir, _split(models) if models else None, _split(datasets) if datasets else None,
                         runs=_split(runs) if runs else None, baseline=baseline, data_root=data_root, command=command)
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
        lik = f"likelihood={cls.likelihood_kind or cls.likelihood}" if cls.likelihood else "likelihood=—"
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
