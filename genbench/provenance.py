"""Where a results file came from: the commit of the code and the recipe of every feature extractor.

FID values are only comparable within one extractor recipe (name, version, weights), so every results
file the benchmarks write carries a stamp::

    {"commit": "d97ee32...+dirty", "extractors": [{"name": "classifier", "version": "classifier-v3:classifier",
     "sha256": "92b3cab9..."}], "stamped_at": "2026-11-29T10:00:00+00:00"}

``stamp`` builds it (from loaded extractors, or from tidy rows with ``recipes_from_rows``) and
``stamp_markdown`` is its one-line form for the head of a Markdown file.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent.parent  # the checkout genbench runs from (editable install)


#: for a copy of the tree on another machine (a GPU check), the commit the copy was made from, as stated by whoever
#: made it; it replaces git's answer (such a copy may hold a stale .git) and is recorded with " (stated)" so that it
#: is never mistaken for git's
STATED_COMMIT_ENV = "GENBENCH_SOURCE_COMMIT"


def code_commit(where: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the checkout holding ``where`` (default: genbench's own source), with
    "+dirty" when tracked files differ from that commit, "unknown" outside a git checkout; when
    ``GENBENCH_SOURCE_COMMIT`` is set, that commit with " (stated)" instead."""
    cwd = str(where or SOURCE)
    stated = os.environ.get(STATED_COMMIT_ENV, "").strip()
    if stated:  # a copy may carry a stale .git of its own: the statement wins, marked as one
        return f"{stated} (stated)"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return "unknown"
        # --no-optional-locks: a read-only look that never rewrites the index
        status = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                                cwd=cwd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if status.returncode != 0 or status.stdout.strip() else "")


def recipe(name: str, version: str | None, sha256: str | None) -> dict[str, Any]:
    """One extractor's recipe: its registered name, recipe version (or weights source) and weights sha256."""
    return {"name": name, "version": version or None, "sha256": sha256 or None}


def extractor_recipe(extractor: Any) -> dict[str, Any]:
    """The recipe of a loaded ``FeatureExtractor``: ``details["recipe"]`` (e.g. "classifier-v3:classifier")
    or, for fixed published weights, their source."""
    details = getattr(extractor, "details", {}) or {}
    version = details.get("recipe") or details.get("weights_source")
    return recipe(extractor.name, version, getattr(extractor, "sha256", None))


def recipes_from_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct extractor recipes named by tidy rows (columns extractor, extractor_sha256, details)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        name = row.get("extractor") or ""
        if not isinstance(name, str) or not name:
            continue
        sha = row.get("extractor_sha256") or ""
        details = row.get("details") or {}
        if isinstance(details, str):
            try:
                details = json.loads(details)
            except ValueError:
                details = {}
        version = (details.get("recipe") or details.get("weights_source")) if isinstance(details, dict) else None
        key = (name, str(sha))
        if key not in seen or (version and not seen[key]["version"]):
            seen[key] = recipe(name, version, str(sha) if sha else None)
    return [seen[k] for k in sorted(seen)]


def stamp(extractors: Iterable[Any] = (), where: str | Path | None = None) -> dict[str, Any]:
    """The stamp of a results file: commit, extractor recipes (loaded extractors or recipe dicts), time."""
    recipes = [e if isinstance(e, dict) else extractor_recipe(e) for e in extractors]
    return {"commit": code_commit(where), "extractors": recipes,
            "stamped_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def stamp_markdown(s: dict[str, Any]) -> str:
    """One Markdown line: "Commit `abc...+dirty`; extractor classifier (classifier-v3:classifier, sha256 92b3cab9f82a)."""
    parts = []
    for e in s.get("extractors", []):
        bits = [b for b in (e.get("version"), f"sha256 {e['sha256'][:12]}" if e.get("sha256") else None) if b]
        parts.append(f"{e['name']} ({', '.join(bits)})" if bits else e["name"])
    ext = f"; extractor {', '.join(parts)}" if parts else "; no feature extractor"
    return f"Commit `{s.get('commit', 'unknown')}`{ext}; stamped {s.get('stamped_at', '')}."
