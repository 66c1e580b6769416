"""pluggy hook specifications: discovery only.

A plugin module (found through the entry-point group ``genbench``) implements any
of these with ``@genbench.hookimpl``.  Every hook returns a list of classes; the
core instantiates them.  Each hook is documented in the README ("Writing a plugin").
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("genbench")


@hookspec
def genbench_models() -> list[type]:
    """Return GenerativeModel subclasses (each with a unique ``name``)."""


@hookspec
def genbench_datasets() -> list[type]:
    """Return Dataset subclasses (each with a unique ``name``)."""


@hookspec
def genbench_metrics() -> list[type]:
    """Return Metric subclasses (each with a unique ``name``)."""


@hookspec
def genbench_extractors() -> list[type]:
    """Return FeatureExtractor subclasses (each with a unique ``name``) for FID/KID/precision-recall."""
