"""What the report reads: stored runs (filtered), their curves and configs, real test images.

A run folder's ``rows.json`` is its source of truth (typed values; ``rows.csv`` beside it is a copy
for spreadsheets and is not read here).  Only a cell whose status.json says "done" contributes rows; a run
folder whose status.json or rows.json cannot be read (cut, empty, garbage) is skipped with a one-line
warning naming the file, and a "done" cell without readable rows is listed as damaged, never as complete.
"""
from __future__ import annotations

import fnmatch
import io
import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from genbench.results import rows_frame

if TYPE_CHECKING:
    from genbench.plugins import Registry

log = logging.getLogger("genbench")


@dataclass
class RunSet:
    """The selected runs: tidy rows of finished cells and the status of every cell."""

    frame: pd.DataFrame
    statuses: list[dict[str, Any]]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_id -> config.json

    @property
    def done(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s.get("state") == "done"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s.get("state") != "done"]


class DamagedFile(ValueError):
    """A run folder file that cannot be read as what it should be; the message names it."""


def _read_json(path: Path, kind: type) -> Any:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise DamagedFile(f"{path} is missing") from None
    except (OSError, ValueError) as exc:  # cut, empty, garbage bytes (UnicodeDecodeError is a ValueError)
        raise DamagedFile(f"{path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(value, kind):
        raise DamagedFile(f"{path} holds a {type(value).__name__}, not a {kind.__name__}")
    return value


def read_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The tidy rows one finished cell wrote (``rows.json``); ``DamagedFile`` when they cannot be read."""
    path = Path(run_dir) / "rows.json"
    rows = _read_json(path, list)
    if not all(isinstance(r, dict) and "metric" in r and "value" in r for r in rows):
        raise DamagedFile(f"{path} holds entries that are not rows")
    return rows


def load_runs(runs_dir: str | Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every finished run's rows (one frame, the runner's columns) and every run's status (done, failed
    with its error, or damaged), in run-folder order.  Unreadable folders are skipped with a warning."""
    rows, statuses = [], []
    for status_path in sorted(Path(runs_dir).glob("*/status.json")):
        try:
            status = _read_json(status_path, dict)
        except DamagedFile as exc:
            log.warning("skipping run folder %s: %s; rerun its cell with genbench run", status_path.parent.name, exc)
            continue
        status["run_dir"] = str(status_path.parent)
        if status.get("state") == "done":
            try:
                rows.extend(read_rows(status_path.parent))
            except DamagedFile as exc:
                log.warning("skipping the rows of %s: %s; rerun its cell with genbench run",
                            status_path.parent.name, exc)
                status = {**status, "state": "damaged", "error": str(exc)}
        statuses.append(status)
    return rows_frame(rows), statuses


def _match(value: Any, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(str(value), p) for p in patterns)


def select_runs(runs_dir: str | Path, runs: list[str] | None = None, models: list[str] | None = None,
                datasets: list[str] | None = None) -> RunSet:
    """Load ``runs_dir/*/`` and keep cells whose run id, model and data set match the filters.

    Each filter is a list of names or shell patterns (``ddpm*``); None keeps everything.
    """
    frame, statuses = load_runs(Path(runs_dir))
    keep = [s for s in statuses
            if _match(s.get("run_id", Path(s["run_dir"]).name), runs) and _match(s.get("model"), models)
            and _match(s.get("dataset"), datasets)]
    ids = {s.get("run_id", Path(s["run_dir"]).name) for s in keep}
    if not frame.empty:
        frame = frame[frame["run_id"].astype(str).isin(ids)].reset_index(drop=True)
    configs = {}
    for s in keep:
        path = Path(s["run_dir"]) / "config.json"
        try:
            configs[s.get("run_id", Path(s["run_dir"]).name)] = json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    return RunSet(frame, keep, configs)


def load_curves(run_dir: str | Path) -> pd.DataFrame | None:
    path = Path(run_dir) / "curves.csv"
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def real_grid_png(
    dataset: str, registry: Registry, n: int = 100, data_root: str | None = None, run_dirs: list[str | Path] = ()
) -> tuple[bytes | None, str]:
    """A 10-column grid of the first ``n`` test images of a data set, as PNG (or None and why not).

    The runner saves that grid as ``real_test.png`` in every run folder; the data set is loaded
    only for runs made before it did.
    """
    for run_dir in run_dirs:
        saved = Path(run_dir) / "real_test.png"
        if saved.is_file():
            return saved.read_bytes(), ""
    try:
        import torchvision.utils as vutils

        from genbench.data.files import resolve_dataset

        data = resolve_dataset(dataset, registry, data_root).load()
        grid = vutils.make_grid(data.spec.to_unit(data.test[:n]), nrow=10, padding=1, pad_value=1.0)
        buf = io.BytesIO()
        vutils.save_image(grid, buf, format="png")
        return buf.getvalue(), ""
    except Exception as exc:  # the report must render even where the data are not at hand
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log.info("no real-image grid for %s: %s", dataset, reason)
        return None, reason


def _cli_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_cli_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_config(model: str, preset: str, dataset: str, registry: Registry) -> dict[str, Any] | None:
    """The config a plain ``genbench run --preset`` would resolve (None when the model or data set is unknown here)."""
    try:
        from genbench.config import resolve_config

        model_cls = registry.models.get(model)
        spec = registry.datasets.get(dataset).spec if dataset in registry.datasets else None
        if spec is None:
            return None
        return resolve_config(model_cls, preset, spec, {}).to_dict()
    except Exception:
        return None


def run_command(model: str, dataset: str, seeds: list[Any], preset: str, config: dict[str, Any] | None,
                registry: Registry, device: str | None = None) -> str:
    """A ``genbench run`` command line that reproduces the cells (``--set`` for every non-preset value).

    Where the preset's defaults cannot be resolved here (unknown model, data from a path)
    every config field is spelled out.
    """
    parts = ["genbench", "run", "--models", model, "--dataset", dataset,
             "--seeds", ",".join(str(s) for s in sorted(seeds)), "--preset", preset]
    if device:
        parts += ["--device", device]
    if config:
        base = default_config(model, preset, dataset, registry) or {}
        for key in sorted(config):
            if key not in base or base[key] != config[key]:
                parts += ["--set", f"{key}={_cli_value(config[key])}"]
    return " ".join(shlex.quote(str(p)) for p in parts)
