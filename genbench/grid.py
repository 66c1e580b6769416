"""Grid files: a whole ``genbench run`` (models x data sets x seeds, a preset, config overrides) as TOML.

    # bench/grids/example.toml
    models = ["ddpm", "vae"]          # or "all"
    datasets = ["digits"]
    seeds = [0, 1, 2]                 # or "0-2"
    preset = "standard"
    extractors = ["classifier"]      # optional (default: the runner's)
    out = "reports-standard"          # optional default for --out
    [set]                             # overrides for every model whose config has the field
    n_samples = 1000
    [set.ddpm]                        # overrides for one model
    sampling_seeds = 3

``genbench run --config FILE.toml`` runs it (flags given on the command line replace the file's values);
``load_grid`` reads and checks a file, ``Grid.cell_specs(registry)`` gives the cells and
``Grid.resolved()`` what each run's config.json records under "grid".  Override values are read as
``--set KEY=VALUE`` reads them (``"none"`` for no value, also inside a list: ``sample_steps = ["none", 50]``),
so a grid and the same command line give the same run ids.  Every mistake in a file is a ``GridError``
whose message is one line naming the file.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.config import ConfigError
from genbench.plugins import UnknownNameError

if TYPE_CHECKING:
    from genbench.plugins import Registry
    from genbench.runner import CellSpec

KEYS = ("models", "datasets", "seeds", "preset", "extractors", "out", "set")
VALUE_TYPES = (str, int, float, bool, list)


class GridError(ConfigError):
    """A bad grid file; the message is one line naming the file and what to change."""


@dataclass(frozen=True)
class Grid:
    """A parsed grid file.  ``models`` is a list of names or "all" (every registered model)."""

    models: list[str] | str
    datasets: list[str] = field(default_factory=lambda: ["digits"])
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str = "quick"
    extractors: list[str] | None = None
    out: str | None = None
    common_overrides: dict[str, Any] = field(default_factory=dict)
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    path: str | None = None

    def _fail(self, message: str) -> GridError:
        return GridError(f"{self.path or 'grid'}: {message}")

    def model_names(self, registry: Registry) -> list[str]:
        """The grid's models ("all": every registered one), each checked against ``registry``."""
        names = registry.models.names() if self.models == "all" else list(self.models)
        for name in names:
            try:
                registry.models.get(name)
            except UnknownNameError as exc:
                raise self._fail(str(exc)) from None
        return names

    def overrides_for(self, model_cls: type, names: list[str]) -> dict[str, Any]:
        """``[set]`` restricted to the fields of ``model_cls.Config``, then ``[set.<model>]`` on top."""
        fields = {f.name for f in dataclasses.fields(model_cls.Config)}
        out = {k: v for k, v in self.common_overrides.items() if k in fields}
        own = self.model_overrides.get(model_cls.name, {})
        unknown = sorted(set(own) - fields)
        if unknown:
            raise self._fail(f"[set.{model_cls.name}] has no config field {', '.join(map(repr, unknown))}"
                             f"{_did_you_mean(unknown[0], fields)}; fields: {', '.join(sorted(fields))}")
        return {**out, **own}

    def cell_specs(self, registry: Registry) -> list[CellSpec]:
        """One CellSpec per (data set, model, seed), in that nesting order, with each model's overrides."""
        from genbench.runner import CellSpec

        names = self.model_names(registry)
        classes = {name: registry.models.get(name) for name in names}
        for name in self.model_overrides:
            if name not in registry.models:
                raise self._fail(f"[set.{name}] names no registered model{_did_you_mean(name, registry.models.names())}")
        for key in self.common_overrides:
            if not any(key in {f.name for f in dataclasses.fields(c.Config)} for c in classes.values()):
                raise self._fail(f"[set] {key!r} is a config field of none of the models {', '.join(names)}")
        for name in self.extractors or []:
            try:
                registry.extractors.get(name)
            except UnknownNameError as exc:
                raise self._fail(str(exc)) from None
        overrides = {name: {k: as_set_text(v) for k, v in self.overrides_for(cls, names).items()}
                     for name, cls in classes.items()}
        return [CellSpec(name, ds, seed, self.preset, dict(overrides[name]))
                for ds in self.datasets for name in names for seed in self.seeds]

    def resolved(self) -> dict[str, Any]:
        """What a run records about the grid it came from (plain JSON values)."""
        return {
            "path": self.path, "sha256": hashlib.sha256(self.source.encode()).hexdigest() if self.source else None,
            "models": self.models if isinstance(self.models, str) else list(self.models),
            "datasets": list(self.datasets), "seeds": list(self.seeds), "preset": self.preset,
            "extractors": list(self.extractors) if self.extractors is not None else None, "out": self.out,
            "common_overrides": dict(self.common_overrides),
            "model_overrides": {k: dict(v) for k, v in self.model_overrides.items()},
        }


def load_grid(path: str | Path) -> Grid:
    """Read and check the grid file at ``path`` (raises GridError with a one-line message)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GridError(f"{p}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"{p}: cannot read the grid file ({type(exc).__name__})") from None
    return parse_grid(text, str(p))


def parse_grid(text: str, path: str | None = None) -> Grid:
    """A Grid from TOML ``text`` (``path`` names the file in messages)."""
    where = path or "grid"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{where}: not valid TOML ({str(exc).splitlines()[0]})") from None
    for key in raw:
        if key not in KEYS:
            raise GridError(f"{where}: unknown key {key!r}{_did_you_mean(key, KEYS)}; keys: {', '.join(KEYS)}")
    if "models" not in raw:
        raise GridError(f'{where}: needs `models = ["name", ...]` (or "all")')
    common, per_model = _overrides(raw.get("set", {}), where)
    return Grid(
        models=_models(raw["models"], where), datasets=_names(raw.get("datasets", ["digits"]), "datasets", where),
        seeds=_seeds(raw.get("seeds", [0]), where), preset=_text(raw.get("preset", "quick"), "preset", where),
        extractors=_names(raw["extractors"], "extractors", where) if "extractors" in raw else None,
        out=_text(raw["out"], "out", where) if "out" in raw else None,
        common_overrides=common, model_overrides=per_model, source=text, path=path,
    )


def as_set_text(value: Any) -> str:
    """A TOML value as ``--set KEY=VALUE`` would give it (3 -> "3", true -> "true", [50, "none"] -> "50,none"),
    so that a grid file and the same overrides on the command line resolve to the same config (and run id)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_set_text(v) for v in value)
    return str(value)


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GridError(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value.strip()


def _names(value: Any, key: str, where: str) -> list[str]:
    """A list of names, or one comma-separated string of them."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise GridError(f'{where}: `{key}` must be a list of names, e.g. {key} = ["a", "b"]; got {value!r}')
    names = [v.strip() for v in items if v.strip()]
    if not names:
        raise GridError(f"{where}: `{key}` is empty")
    if len(set(names)) != len(names):
        raise GridError(f"{where}: `{key}` names something twice: {names}")
    return names


def _models(value: Any, where: str) -> list[str] | str:
    if isinstance(value, str) and value.strip() == "all":
        return "all"
    return _names(value, "models", where)


def _seeds(value: Any, where: str) -> list[int]:
    """[0, 1, 2], 3, "0-2" or "0,1,2" -> a list of distinct non-negative ints."""
    bad = GridError(f'{where}: `seeds` must be a list of integers, one integer, or a range such as "0-2"; got {value!r}')
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        seeds = [value]
    elif isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad
        seeds = list(value)
    elif isinstance(value, str):
        seeds = []
        for part in (p.strip() for p in value.split(",") if p.strip()):
            lo, dash, hi = part.partition("-")
            try:
                seeds += list(range(int(lo), int(hi) + 1)) if dash else [int(part)]
            except ValueError:
                raise bad from None
    else:
        raise bad
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise bad
    return seeds


def _overrides(table: Any, where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``[set]`` -> (overrides for every model, {model: its own overrides})."""
    if not isinstance(table, dict):
        raise GridError(f"{where}: `set` must be a table ([set] with KEY = VALUE lines)")
    common: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            for field_name, v in value.items():
                _check_value(v, f"[set.{key}] {field_name}", where)
            per_model[key] = dict(value)
        else:
            _check_value(value, f"[set] {key}", where)
            common[key] = value
    return common, per_model


def _check_value(value: Any, what: str, where: str) -> None:
    if isinstance(value, dict):
        raise GridError(f"{where}: {what} is a table; a config override is a value (write \"none\" for no value)")
    if not isinstance(value, VALUE_TYPES) or (isinstance(value, list) and not all(
            isinstance(v, VALUE_TYPES) and not isinstance(v, (list, dict)) for v in value)):
        raise GridError(f"{where}: {what} = {value!r} is not a string, number, boolean or flat list")
