"""What the benchmark scripts share: the results folder, reading rows, and writing stamped result files.

Every file written under bench/results/ goes through ``write``, which stamps it with the commit of the
code and the recipe (name, version, weights sha256) of each feature extractor involved
(``genbench.provenance``): a number is only comparable with numbers of the same recipe.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genbench.io import atomic_write_text
from genbench.provenance import stamp, stamp_markdown

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


def details(row: dict | None) -> dict:
    """A row's details (rows.json stores them as a JSON string)."""
    d = (row or {}).get("details") or {}
    return json.loads(d) if isinstance(d, str) else d


def pick(rows: list[dict], metric: str, **match: Any) -> dict | None:
    """The first row of ``metric`` whose other columns equal ``match`` (e.g. sampler="DDIM-50")."""
    for r in rows:
        if r.get("metric") == metric and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def write(result: dict, tag: str, markdown: str | None, extractors: Iterable[Any] = (), folder: Path = RESULTS) -> dict:
    """``folder``/<tag>.json (and <tag>.md unless ``markdown`` is None), both stamped; the Markdown also on stdout.

    ``extractors``: loaded FeatureExtractors or recipe dicts (``genbench.provenance.recipe``).
    Returns the stamp."""
    s = stamp(extractors)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{tag}.json", json.dumps({"stamp": s, **result}, indent=2, default=str) + "\n")
    if markdown is not None:
        head, _, rest = markdown.partition("\n")
        text = f"{head}\n\n{stamp_markdown(s)}\n{rest}" if head.startswith("#") else f"{stamp_markdown(s)}\n\n{markdown}"
        atomic_write_text(folder / f"{tag}.md", text)
        print(text)
    return s
