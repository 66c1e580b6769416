"""Grids: a whole ``genbench run`` (models x data sets x seeds, a preset, config overrides) as one value.

    # bench/grids/example.toml
    models = ["ddpm", "vae"]          # or "all"
    datasets = ["digits"]
    seeds = [0, 1, 2]                 # or "0-2", or "0,2-4"
    preset = "standard"
    extractors = ["classifier"]      # optional (default: the runner's)
    out = "reports-standard"          # optional default for --out
    [set]                             # overrides for every model whose config has the field
    n_samples = 1000
    [set.ddpm]                        # overrides for one model
    sampling_seeds = 3

``genbench run --config FILE.toml`` runs a file (flags given on the command line replace the file's values;
``--set`` pairs go on top of its ``[set]`` tables); ``genbench run --models ...`` without a file is the same
grid built from the flags (:func:`with_flags`), so both go through one rule for overrides: a key without a
model prefix (``lr``) applies to every model whose config has that field and is an error only if none has it;
``vae.lr`` (``[set.vae]``) applies to that model alone.  ``Grid.resolved()`` is what every run's config.json
records under "grid"; ``genbench run --config runs/<id>/config.json`` reads that block back
(:func:`grid_from_resolved`) and runs the same cells, with the same run ids.  Override values are read as
``--set KEY=VALUE`` reads them (``"none"`` for no value, also inside a list: ``sample_steps = ["none", 50]``).
Every mistake is a ``GridError`` whose message is one line naming the file (or the flag).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
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
COMMAND_LINE = "command line"


class GridError(ConfigError):
    """A bad grid file or flag; the message is one line naming the file (or flag) and what to change."""


@dataclass(frozen=True)
class Grid:
    """A parsed grid.  ``models`` is a list of names or "all" (every registered model); ``path`` names the
    file the grid came from (None: the command line), for messages."""

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
    from_flags: bool = False  # made of command-line flags alone (messages name the flags)

    def _fail(self, message: str) -> GridError:
        return GridError(f"{self.path or (COMMAND_LINE if self.from_flags else 'grid')}: {message}")

    def _set_label(self, model: str | None = None, key: str | None = None) -> str:
        """How an override is named in messages: ``[set.vae] 'lr'`` in a file, ``--set vae.lr`` on the command line."""
        if self.from_flags:
            return "--set " + ".".join(p for p in (model, key) if p) if key else f"--set {model}.KEY"
        table = f"[set.{model}]" if model else "[set]"
        return f"{table} {key!r}" if key else table

    def model_names(self, registry: Registry) -> list[str]:
        """The grid's models ("all": every registered one), each checked against ``registry``."""
        names = registry.models.names() if self.models == "all" else list(self.models)
        for name in names:
            try:
                registry.models.get(name)
            except UnknownNameError as exc:
                raise self._fail(str(exc)) from None
        return names

    def overrides_for(self, model_cls: type) -> dict[str, Any]:
        """The common overrides restricted to the fields of ``model_cls.Config``, then the model's own on top."""
        fields = {f.name for f in dataclasses.fields(model_cls.Config)}
        out = {k: v for k, v in self.common_overrides.items() if k in fields}
        own = self.model_overrides.get(model_cls.name, {})
        unknown = sorted(set(own) - fields)
        if unknown:
            label = self._set_label(model_cls.name)
            raise self._fail(f"{label} has no config field {', '.join(map(repr, unknown))}"
                             f"{_did_you_mean(unknown[0], fields)}; fields: {', '.join(sorted(fields))}")
        return {**out, **own}

    def cell_specs(self, registry: Registry) -> list[CellSpec]:
        """One CellSpec per (data set, model, seed), in that nesting order, with each model's overrides."""
        from genbench.runner import CellSpec

        names = self.model_names(registry)
        classes = {name: registry.models.get(name) for name in names}
        for name in self.model_overrides:
            if name not in registry.models:
                raise self._fail(f"{self._set_label(name)} names no registered model"
                                 f"{_did_you_mean(name, registry.models.names())}")
        for key in self.common_overrides:
            if not any(key in {f.name for f in dataclasses.fields(c.Config)} for c in classes.values()):
                raise self._fail(f"{self._set_label(key=key)} is a config field of none of the models {', '.join(names)}"
                                 f"{_did_you_mean(key, {f.name for c in classes.values() for f in dataclasses.fields(c.Config)})}")
        for name in self.extractors or []:
            try:
                registry.extractors.get(name)
            except UnknownNameError as exc:
                raise self._fail(str(exc)) from None
        overrides = {name: {k: as_set_text(v) for k, v in self.overrides_for(cls).items()} for name, cls in classes.items()}
        return [CellSpec(name, ds, seed, self.preset, dict(overrides[name]))
                for ds in self.datasets for name in names for seed in self.seeds]

    def resolved(self) -> dict[str, Any]:
        """What a run records about the grid it came from (plain JSON values); :func:`grid_from_resolved` reads
        it back into a grid with the same cells."""
        return {
            "path": self.path, "sha256": hashlib.sha256(self.source.encode()).hexdigest() if self.source else None,
            "models": self.models if isinstance(self.models, str) else list(self.models),
            "datasets": list(self.datasets), "seeds": list(self.seeds), "preset": self.preset,
            "extractors": list(self.extractors) if self.extractors is not None else None, "out": self.out,
            "common_overrides": dict(self.common_overrides),
            "model_overrides": {k: dict(v) for k, v in self.model_overrides.items()},
        }


def load_grid(path: str | Path) -> Grid:
    """Read and check the grid at ``path``: a TOML grid file, or a run's config.json (its "grid" block, else
    the cell its "identity" describes).  Raises GridError with a one-line message."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GridError(f"{p}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"{p}: cannot read the grid file ({type(exc).__name__})") from None
    if p.suffix == ".json":
        try:
            blob = json.loads(text)
        except ValueError:
            raise GridError(f"{p}: not valid JSON (a grid is a .toml file or a run's config.json)") from None
        return grid_from_resolved(blob, str(p))
    return parse_grid(text, str(p))


def parse_grid(text: str, path: str | None = None) -> Grid:
    """A Grid from TOML ``text`` (``path`` names the file in messages)."""
    where = path or "grid"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{where}: not valid TOML ({str(exc).splitlines()[0]})") from None
    grid = _from_table(raw, where, path)
    return dataclasses.replace(grid, source=text)


def grid_from_resolved(blob: Any, path: str | None = None) -> Grid:
    """The grid a run's config.json records (``blob["grid"]``, what :meth:`Grid.resolved` wrote), or, for a run
    without one, the single cell of its ``identity`` with every config field spelled out."""
    where = path or "config.json"
    if not isinstance(blob, dict):
        raise GridError(f"{where}: expected a JSON object (a run's config.json)")
    if isinstance(blob.get("grid"), dict):
        g = blob["grid"]
        table: dict[str, Any] = {k: g[k] for k in ("models", "datasets", "seeds", "preset", "extractors", "out")
                                 if g.get(k) is not None}
        table["set"] = {**dict(g.get("common_overrides") or {}), **{m: dict(v) for m, v in
                                                                     (g.get("model_overrides") or {}).items()}}
        return _from_table(table, where, where)
    ident = blob.get("identity")
    if not isinstance(ident, dict) or "model" not in ident:
        raise GridError(f"{where}: has neither a \"grid\" block nor an \"identity\" (is it a run's config.json?)")
    config = {k: _cli_text(v) for k, v in (ident.get("config") or {}).items()}
    table = {"models": [ident["model"]], "datasets": [ident.get("dataset", "digits")], "seeds": [ident.get("seed", 0)],
             "preset": ident.get("preset", "quick"), "set": {ident["model"]: config}}
    if ident.get("extractors"):
        table["extractors"] = list(ident["extractors"])
    return _from_table(table, where, where)


def with_flags(base: Grid | None, *, models: str | None = None, datasets: str | None = None, seeds: str | None = None,
               preset: str | None = None, extractors: str | None = None, out: str | None = None,
               sets: dict[str, Any] | None = None) -> Grid:
    """``base`` (a grid file, or None for a grid made of flags alone) with the command line's flags on top.

    A flag replaces the file's value; ``sets`` (``--set`` pairs, plus what --steps/--minutes/--n-samples mean)
    go on top of the file's ``[set]``: ``KEY`` for every model with that field (replacing the file's per-model
    value of KEY too), ``MODEL.KEY`` for one model.
    """
    where = COMMAND_LINE
    if base is None:
        if models is None:
            raise GridError("give --models (comma-separated names, or 'all') or --config FILE.toml")
        base = Grid(models="all", from_flags=True)
    given: dict[str, Any] = {}
    if models is not None:
        given["models"] = _models(models, "--models", where)
    if datasets is not None:
        given["datasets"] = _names(datasets, "--datasets", where)
    if seeds is not None:
        given["seeds"] = parse_seeds(seeds, "--seeds", where)
    if preset is not None:
        given["preset"] = _text(preset, "--preset", where)
    if extractors is not None:
        given["extractors"] = _names(extractors, "--extractors", where)
    if out is not None:
        given["out"] = out
    common, per_model = dict(base.common_overrides), {m: dict(v) for m, v in base.model_overrides.items()}
    flag_common, flag_per_model = split_overrides(sets or {}, where)
    for key, value in flag_common.items():
        common[key] = value
        for own in per_model.values():
            own.pop(key, None)
    for model, own in flag_per_model.items():
        per_model.setdefault(model, {}).update(own)
    return dataclasses.replace(base, **given, common_overrides=common, model_overrides=per_model)


def split_overrides(pairs: dict[str, Any], where: str = COMMAND_LINE) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``{"lr": "1e-3", "vae.beta": "2"}`` -> (``{"lr": "1e-3"}``, ``{"vae": {"beta": "2"}}``)."""
    common: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for key, value in pairs.items():
        model, dot, name = key.rpartition(".")
        if dot and (not model or not name or "." in model):
            raise GridError(f"{where}: --set takes KEY=VALUE or MODEL.KEY=VALUE, got {key!r}")
        if dot:
            per_model.setdefault(model, {})[name] = value
        else:
            common[key] = value
    return common, per_model


def parse_seeds(value: Any, label: str = "`seeds`", where: str = "grid") -> list[int]:
    """[0, 1, 2], 3, "0-2" or "0,2-4" -> a list of distinct non-negative ints (a seed given twice is refused)."""
    bad = GridError(f'{where}: {label} must be a list of integers, one integer, or ranges such as "0-2" or "0,2-4"; '
                    f"got {value!r}")
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
                span = list(range(int(lo), int(hi) + 1)) if dash else [int(part)]
            except ValueError:
                raise bad from None
            if not span:
                raise GridError(f"{where}: {label}: the range {part!r} is empty (write low-high, e.g. 0-2)")
            seeds += span
    else:
        raise bad
    if not seeds or min(seeds) < 0:
        raise bad
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise GridError(f"{where}: {label} gives seed {', '.join(map(str, twice))} twice ({value!r}); each seed runs once")
    return seeds


def as_set_text(value: Any) -> str:
    """A TOML value as ``--set KEY=VALUE`` would give it (3 -> "3", true -> "true", [50, "none"] -> "50,none"),
    so that a grid file and the same overrides on the command line resolve to the same config (and run id)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_set_text(v) for v in value)
    return str(value)


def _cli_text(value: Any) -> str:
    """A config value as ``--set`` reads it back (None -> "none", [None, 50] -> "none,50")."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_cli_text(v) for v in value)
    return as_set_text(value)


def _from_table(raw: dict[str, Any], where: str, path: str | None) -> Grid:
    for key in raw:
        if key not in KEYS:
            raise GridError(f"{where}: unknown key {key!r}{_did_you_mean(key, KEYS)}; keys: {', '.join(KEYS)}")
    if "models" not in raw:
        raise GridError(f'{where}: needs `models = ["name", ...]` (or "all")')
    common, per_model = _overrides(raw.get("set", {}), where)
    return Grid(
        models=_models(raw["models"], "`models`", where),
        datasets=_names(raw.get("datasets", ["digits"]), "`datasets`", where),
        seeds=parse_seeds(raw.get("seeds", [0]), "`seeds`", where),
        preset=_text(raw.get("preset", "quick"), "`preset`", where),
        extractors=_names(raw["extractors"], "`extractors`", where) if "extractors" in raw else None,
        out=_text(raw["out"], "`out`", where) if "out" in raw else None,
        common_overrides=common, model_overrides=per_model, path=path,
    )


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _text(value: Any, label: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GridError(f"{where}: {label} must be a non-empty string, got {value!r}")
    return value.strip()


def _names(value: Any, label: str, where: str) -> list[str]:
    """A list of names, or one comma-separated string of them."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        key = label.strip("`-")
        raise GridError(f'{where}: {label} must be a list of names, e.g. {key} = ["a", "b"]; got {value!r}')
    names = [v.strip() for v in items if v.strip()]
    if not names:
        raise GridError(f"{where}: {label} is empty")
    if len(set(names)) != len(names):
        raise GridError(f"{where}: {label} names something twice: {names}")
    return names


def _models(value: Any, label: str, where: str) -> list[str] | str:
    if isinstance(value, str) and value.strip() == "all":
        return "all"
    return _names(value, label, where)


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
