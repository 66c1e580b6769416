"""``genbench export D --split test --to DIR|FILE.npz``: hand a data set's split to other tools.

An ``.npz`` gets the integer levels as ``x`` (N x C x H x W, uint8 for K <= 256), ``levels`` (K) and the labels as
``y`` when the data set has them: ``genbench eval``, ``genbench fid`` and ``genbench run --dataset`` read it back
unchanged.  A folder gets one 8-bit PNG per image (``00000.png``, ...; grayscale or RGB), level k written as
``round(k * 255 / (K-1))`` -- the values ``genbench eval`` maps back to k exactly -- and ``labels.csv`` when
there are labels.  Every file is written atomically; an existing non-empty folder is refused.
"""
from __future__ import annotations

import io
from pathlib import Path

import click
import numpy as np


def export_split(levels: np.ndarray, k: int, labels: np.ndarray | None, to: Path) -> str:
    """Write ``levels`` (N, C, H, W, values 0..K-1) to an .npz or a folder of PNGs; what was written, in words."""
    from PIL import Image

    from genbench.io import atomic_write_bytes, atomic_write_text

    if to.suffix == ".npz":
        buf = io.BytesIO()
        arrays = {"x": levels.astype(np.uint8 if k <= 256 else np.int32), "levels": np.int64(k)}
        if labels is not None:
            arrays["y"] = labels
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(to, buf.getvalue())
        return f"{len(levels)} images to {to} (x, levels" + (", y)" if labels is not None else ")")
    if k > 256:
        raise click.UsageError(f"the data set has {k} levels; PNG files hold 256: export to an .npz instead")
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise click.UsageError(f"{to} exists and is not an empty folder; give a new folder or FILE.npz")
    pixels = np.round(levels.astype(np.float64) * 255.0 / (k - 1)).astype(np.uint8)
    width = max(5, len(str(len(pixels) - 1)))
    for i, img in enumerate(pixels):
        png = io.BytesIO()
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(png, format="png")
        atomic_write_bytes(to / f"{i:0{width}d}.png", png.getvalue())
    if labels is not None:
        atomic_write_text(to / "labels.csv", "file,label\n" + "".join(f"{i:0{width}d}.png,{int(y)}\n"
                                                                   for i, y in enumerate(labels)))
    return f"{len(pixels)} PNG images to {to}/" + (" (and labels.csv)" if labels is not None else "")


@click.command(name="export")
@click.argument("dataset", metavar="D")
@click.option("--split", default=None, type=click.Choice(["train", "val", "test"]),
              help="Which split (or give D as NAME:SPLIT).  [default: test]")
@click.option("--to", "to", required=True, type=click.Path(), help="FILE.npz, or a new folder for PNG files.")
@click.option("--data-root", default=None, help="Where data-set files live (else each data set's default).")
def export_command(dataset, split, to, data_root) -> None:
    """Write a data set's split (D: digits, fashion-mnist, a path; or NAME:SPLIT) to an .npz or a folder of PNGs."""
    from genbench.data.base import DataError
    from genbench.data.references import dataset_and_split, load_split, split_labels
    from genbench.plugins import UnknownNameError, get_registry

    try:
        registry = get_registry()
        ref = dataset_and_split(dataset, registry, default_split=split or "test")
        if split is not None and ref.split != split:
            raise click.UsageError(f"{dataset} names the {ref.split} split but --split says {split}; give one")
        data, levels = load_split(ref, registry, data_root)
        labels = split_labels(data, ref.split)
        what = export_split(levels.numpy(), data.spec.levels, None if labels is None else labels.numpy(), Path(to))
    except (DataError, UnknownNameError, OSError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    click.echo(f"wrote {ref} ({data.split_id}): {what}")
