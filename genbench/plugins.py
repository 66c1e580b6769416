"""The plugin manager: one entry-point group, ``genbench``, is the only way in.

Built-in model families under ``plugins/`` are declared in that group by
genbench's own ``pyproject.toml``, exactly like a third-party package's.  The
core's own data sets and metrics are registered directly (they are not models).
Set ``GENBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry points (tests register
what they need by hand).
"""
from __future__ import annotations

import difflib
import importlib.metadata
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, Iterator, TypeVar

import pluggy

from genbench import hookspecs
from genbench.hookspecs import hookimpl

ENTRY_POINT_GROUP = "genbench"
AUTOLOAD_ENV = "GENBENCH_DISABLE_PLUGIN_AUTOLOAD"

__all__ = [
    "Catalogue", "Entry", "PluginConflictError", "PluginInfo", "PluginLoadWarning", "Registry", "UnknownNameError",
    "build_registry", "get_registry", "hookimpl", "make_plugin_manager", "set_registry", "using_registry",
]

T = TypeVar("T")


class UnknownNameError(LookupError):
    """An unknown model/data set/metric name; the message has did-you-mean and the choices."""


class PluginConflictError(RuntimeError):
    """Two plugins register the same name."""


class PluginLoadWarning(UserWarning):
    """A plugin distribution failed to import; the rest keeps working."""


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from."""

    name: str
    distribution: str
    version: str
    module: str


@dataclass
class Entry(Generic[T]):
    """A registered class and the plugin that provided it."""

    cls: T
    plugin: PluginInfo


@dataclass
class Catalogue(Generic[T]):
    """Name -> entry for one kind of thing (models, data sets, metrics)."""

    kind: str
    entries: dict[str, Entry[T]] = field(default_factory=dict)

    def add(self, name: str, entry: Entry[T]) -> None:
        if name in self.entries:
            first = self.entries[name].plugin
            second = entry.plugin
            raise PluginConflictError(
                f"{self.kind} {name!r} is registered twice: by {first.distribution} ({first.module}) "
                f"and by {second.distribution} ({second.module}); uninstall one of them"
            )
        self.entries[name] = entry

    def get(self, name: str) -> T:
        try:
            return self.entries[name].cls
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, sorted(self.entries))) from None

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __iter__(self) -> Iterator[tuple[str, Entry[T]]]:
        return iter(sorted(self.entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self.entries


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} Available: {', '.join(choices) or 'none'}"


class Registry:
    """Models, data sets, metrics, feature extractors, experiment trackers (``loggers``) and restoration tasks
    from every registered plugin."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
        self.pm = pm
        self.plugins = infos
        self.models: Catalogue[Any] = Catalogue("model")
        self.datasets: Catalogue[Any] = Catalogue("data set")
        self.metrics: Catalogue[Any] = Catalogue("metric")
        self.extractors: Catalogue[Any] = Catalogue("feature extractor")
        self.loggers: Catalogue[Any] = Catalogue("logger")
        self.tasks: Catalogue[Any] = Catalogue("task")
        for catalogue, hook in (
            (self.models, "genbench_models"),
            (self.datasets, "genbench_datasets"),
            (self.metrics, "genbench_metrics"),
            (self.extractors, "genbench_extractors"),
            (self.loggers, "genbench_loggers"),
            (self.tasks, "genbench_tasks"),
        ):
            caller = getattr(pm.hook, hook)
            for impl in caller.get_hookimpls():
                info = infos.get(pm.get_name(impl.plugin) or "", _info_for_module(impl.plugin))
                for cls in impl.function() or []:
                    catalogue.add(cls.name, Entry(cls, info))


def _info_for_module(module: object) -> PluginInfo:
    mod_name = getattr(module, "__name__", repr(module))
    return PluginInfo(name=mod_name, distribution="(registered in process)", version="", module=mod_name)


def _core_plugins() -> list[tuple[ModuleType, PluginInfo]]:
    from genbench import __version__
    from genbench.data import plugin as data_plugin
    from genbench.metrics import plugin as metrics_plugin
    from genbench.tasks import plugin as tasks_plugin
    from genbench.trackers import plugin as trackers_plugin

    return [
        (mod, PluginInfo(name=f"genbench-core:{mod.__name__}", distribution="genbench", version=__version__, module=mod.__name__))
        for mod in (data_plugin, metrics_plugin, trackers_plugin, tasks_plugin)
    ]


def make_plugin_manager(
    autoload: bool | None = None, extra: list[object] | None = None
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A plugin manager with the core plugins, entry points (unless disabled) and ``extra``."""
    pm = pluggy.PluginManager("genbench")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for module, info in _core_plugins():
        pm.register(module, name=info.name)
        infos[info.name] = info
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    if autoload:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            version = ep.dist.version if ep.dist is not None else ""
            key = f"{dist}:{ep.name}"
            if key in infos or pm.has_plugin(key):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not sink the others
                warnings.warn(
                    f"genbench plugin {ep.name!r} from distribution {dist} failed to load: "
                    f"{type(exc).__name__}: {exc}",
                    PluginLoadWarning,
                    stacklevel=2,
                )
                continue
            pm.register(module, name=key)
            infos[key] = PluginInfo(name=ep.name, distribution=dist, version=version, module=ep.value)
    for i, module in enumerate(extra or []):
        key = f"extra:{getattr(module, '__name__', i)}"
        pm.register(module, name=key)
        infos[key] = _info_for_module(module)
    return pm, infos


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry (built once).  Only the command line calls this; everything below it is
    handed the registry it should use (``Runner(registry=...)``, ``EvalContext.registry``, ``get_extractor``)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry(*make_plugin_manager())
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests use this with hand-registered plugins)."""
    global _REGISTRY
    _REGISTRY = registry


@contextmanager
def using_registry(registry: Registry | None) -> Iterator[Registry | None]:
    """Make ``registry`` the process-wide one inside the block and put the previous one back after it, even
    on an error (tests and embedding programs use this with hand-registered plugins)."""
    global _REGISTRY
    previous = _REGISTRY
    _REGISTRY = registry
    try:
        yield registry
    finally:
        _REGISTRY = previous


def build_registry(extra: list[object] | None = None, autoload: bool | None = None) -> Registry:
    return Registry(*make_plugin_manager(autoload=autoload, extra=extra))
