"""``genbench eval SAMPLES --dataset D``: score samples made elsewhere onto the same leaderboard as trained models.

SAMPLES: a folder of PNGs (any image files), an ``.npz`` (integer levels, or floats in [0, 1] quantised once as
the runner quantises samples) or a data set's split ``NAME:SPLIT``; formats and checks in
``genbench.data.samples``.  The rows (``genbench.runner.external``) are those of a trained cell, tagged
``role = external``, in a run folder of their own under ``--out``; ``genbench report`` shows them beside the
trained models.  Every refusal is one line, before any run folder exists.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command(name="eval")
@click.argument("samples", metavar="SAMPLES")
@click.option("--dataset", "dataset", required=True,
              help="The data set the samples are scored on: a name (digits), NAME:test, or a path (.npz, image folder).")
@click.option("--name", default=None, help="The leaderboard name of the model.  [default: SAMPLES' file or folder name]")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Where runs go (the run folder is OUT/runs/<name>-<data set>-s<seed>-<hash>).")
@click.option("--sampler", default="external", show_default=True, help="Sampler label of the samples' rows.")
@click.option("--nfe", type=click.IntRange(min=0), default=None, help="Network evaluations per image (cost column).")
@click.option("--images-per-second", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sampling throughput you measured (cost column; state the hardware in --name or your paper).")
@click.option("--params", type=click.IntRange(min=0), default=None, help="Parameter count of the model (cost column).")
@click.option("--resize", is_flag=True, help="Convert samples of another size, channel count or number of levels "
              "to the data set's (bilinear + antialias, luma, rounding); recorded in the rows.  Without it a mismatch "
              "is an error.")
@click.option("--seed", default=0, show_default=True, help="Seed of the real-data floor's choice and the bootstraps "
              "(the same seed as a trained run's gives the same floor).")
@click.option("--extractors", default=None, help="Feature extractors, comma-separated (default: $GENBENCH_EXTRACTORS "
              "or classifier).")
@click.option("--device", default="auto", show_default=True)
@click.option("--data-root", default=None, help="Where data-set files live (else each data set's default).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Feature cache (default OUT/cache, shared with genbench run --out OUT).")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Also write the rows as JSON (- = standard output; the other output goes to standard error).")
def eval_command(samples, dataset, name, out_dir, sampler, nfe, images_per_second, params, resize, seed, extractors,
                 device, data_root, cache_dir, json_out) -> None:
    """Score samples made elsewhere (SAMPLES: a folder of images, an .npz, or NAME:SPLIT) like a trained cell."""
    from genbench.config import ConfigError
    from genbench.data.base import DataError
    from genbench.data.files import resolve_dataset
    from genbench.data.references import dataset_and_split
    from genbench.data.samples import read_samples
    from genbench.jsonout import write_json
    from genbench.metrics.base import default_extractor_names
    from genbench.metrics.inception import InceptionWeightsError
    from genbench.plugins import UnknownNameError, get_registry
    from genbench.runner.device import pick_device
    from genbench.runner.external import StatedCost, evaluate_samples

    err = json_out == "-"
    try:
        registry = get_registry()
        ref = dataset_and_split(dataset, registry)
        if ref.split != "test":
            raise click.ClickException(f"--dataset {dataset}: samples are scored against the test split, as trained "
                                   f"models are; give --dataset {ref.dataset} (or {ref.dataset}:test)")
        names = [e.strip() for e in extractors.split(",") if e.strip()] if extractors else default_extractor_names()
        for e in names:
            registry.extractors.get(e)  # did-you-mean before any work
        data = resolve_dataset(ref.dataset, registry, data_root).load()
        got = read_samples(samples, data.spec, ref.dataset, resize=resize, registry=registry, data_root=data_root)
        label = name or _default_name(samples)
        dev = pick_device(device)
        command = _command(samples, ref.dataset, label, out_dir, sampler, nfe, images_per_second, params, resize, seed,
                           extractors)
    except (DataError, ConfigError, UnknownNameError, InceptionWeightsError, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    try:  # from here on a run folder exists: a failure marks it failed (status.json), never done
        result = evaluate_samples(got, data, ref.dataset, label, out_dir, registry=registry, extractors=names,
                                  device=dev, seed=seed, sampler=sampler, command=command,
                                  cost=StatedCost(nfe, images_per_second, params), cache_dir=cache_dir)
    except Exception as exc:
        text = (f"{type(exc).__name__}: {exc}".strip().splitlines() or [type(exc).__name__])[0]
        raise click.ClickException(f"{text} (the evaluation stopped; its run folder says failed)") from None
    click.echo(f"[{'ok' if result.state == 'done' else 'cached'}] {label} on {ref.dataset}: {got.n} samples "
               f"from {got.source}" + (f" (converted: {got.conversion})" if got.conversion else "")
               + f" ({result.seconds:.1f}s)", err=err)
    for r in result.rows:
        if r["metric"] in ("fid", "fid_floor", "kid", "precision", "recall") and r["extractor"] == names[0]:
            se = f" ± {r['stderr']:.3g}" if r.get("stderr") is not None else ""
            click.echo(f"  {r['metric']:<10} {r['value']:.5g}{se}  ({r['sampler']}, {r['extractor']}, n={r['n']})",
                       err=err)
    click.echo(f"rows in {result.run_dir}; leaderboard: genbench report {out_dir}", err=err)
    if json_out:
        write_json(result.rows, json_out)


def _default_name(samples: str) -> str:
    path = Path(samples.rstrip("/"))
    return (path.stem if path.suffix == ".npz" else path.name) or "external"


def _command(samples, dataset, name, out_dir, sampler, nfe, ips, params, resize, seed, extractors) -> str:
    """The command line that reproduces this evaluation (recorded in config.json; the report lists it)."""
    parts = ["genbench", "eval", samples, "--dataset", dataset, "--name", name, "--out", str(out_dir)]
    for flag, value, default in (("--sampler", sampler, "external"), ("--nfe", nfe, None),
                                 ("--images-per-second", ips, None), ("--params", params, None), ("--seed", seed, 0),
                                 ("--extractors", extractors, None)):
        if value != default:
            parts += [flag, str(value)]
    if resize:
        parts.append("--resize")
    return " ".join(shlex.quote(p) for p in parts)
