"""pluggy hook specifications: discovery only.

A plugin module (found through the entry-point group ``genbench``) implements any
of these with ``@genbench.hookimpl`` (defined here, beside the specifications, so
that the core's own plugin modules import it without importing the plugin manager).
Every hook returns a list of classes; the core instantiates them.  Each hook is
documented in the README ("Writing a plugin").
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("genbench")
hookimpl = pluggy.HookimplMarker("genbench")


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


@hookspec
def genbench_loggers() -> list[type]:
    """Return experiment-tracker classes (``genbench.trackers.Tracker`` subclasses, each with a unique ``name``)
    for ``genbench run --log NAME``."""


@hookspec
def genbench_tasks() -> list[type]:
    """Return restoration tasks (``genbench.tasks.Task`` subclasses, each with a unique ``name``) for
    ``genbench run --task NAME``."""
