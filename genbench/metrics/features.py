"""Extracting features once and caching them (and their statistics) on disk.

A cache entry is keyed by the sha256 of (extractor name, extractor weights sha256,
resize method, content hash of the images), so a data split's reference statistics
are computed once per data set and extractor and reused by FID, KID and
precision/recall/density/coverage.  Features are stored as float32 (what the
networks produce, so nothing is lost); statistics as float64.  Each file's sha256 is kept
beside it and checked before use; a damaged file is moved aside and computed again.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genbench.io import load_verified, save_verified
from genbench.metrics.extractors import FeatureExtractor
from genbench.metrics.stats import FeatureStats

CACHE_VERSION = "features-v1"


def images_sha256(x: Tensor) -> str:
    """sha256 of an image tensor's dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(f"{x.dtype}:{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(ext: FeatureExtractor, content: str) -> str:
    return hashlib.sha256(f"{CACHE_VERSION}:{ext.name}:{ext.sha256}:{ext.resize}:{content}".encode()).hexdigest()


@dataclass
class FeatureSet:
    """Statistics (always) and the features themselves (when kept) of one image set."""

    stats: FeatureStats
    features: Tensor | None
    cached: bool = False  # True when read from the disk cache

    @property
    def n(self) -> int:
        return self.stats.n


def stream_features(ext: FeatureExtractor, batches: Iterable[Tensor], keep: bool) -> FeatureSet:
    """Run ``ext`` over batches of images in [0, 1]; memory O(d^2) unless ``keep``."""
    stats = FeatureStats(ext.dims)
    kept: list[Tensor] = []
    for batch in batches:
        f = ext.features(batch, on_device=True)  # statistics accumulate where the features are (float64)
        stats.update(f)
        if keep:
            kept.append(f.cpu())
    stats.to_cpu()
    return FeatureSet(stats, torch.cat(kept) if keep and kept else (torch.zeros(0, ext.dims) if keep else None))


def tensor_batches(x: Tensor, batch_size: int) -> Iterator[Tensor]:
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]


def cached_features(
    ext: FeatureExtractor,
    content: str,
    batches: Iterable[Tensor] | Callable[[], Iterable[Tensor]] | None,
    cache_dir: Path | None,
    keep: bool = True,
    label: str = "",
) -> FeatureSet:
    """Features of the images identified by ``content`` (a hash), from the cache or computed from ``batches``.

    ``batches`` may be a zero-argument callable returning the batches, so nothing is
    read when the cache answers.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "features" / f"{ext.name}-{cache_key(ext, content)[:32]}.pt"
        blob = load_verified(path)
        if blob is not None:
            if not keep or blob.get("features") is not None:
                return FeatureSet(FeatureStats.from_state(blob["stats"]), blob.get("features") if keep else None, True)
    if callable(batches):
        batches = batches()
    if batches is None:
        raise ValueError("features are not cached and no images were given")
    fs = stream_features(ext, batches, keep)
    if path is not None:
        save_verified(path, {
            "stats": fs.stats.state(), "features": fs.features, "extractor": ext.name, "extractor_sha256": ext.sha256,
            "resize": ext.resize, "content": content, "label": label,
        })
    return fs
