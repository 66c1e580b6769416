"""Scoring a genbench checkpoint without training (``genbench run --models M --checkpoint PATH``).

A genbench checkpoint is what the Trainer writes to ``runs/<id>/checkpoints/`` (``best.pt``, ``last.pt``,
``previous.pt``): a ``weights_only`` dict with ``model`` (networks, averaged copies, optimisers, step, extra
state), the training seconds, the validation selection and every random state; since this module it also
carries ``identity`` (the model's name and the data's ``DataSpec``).  For an older checkpoint the run folder's
config.json (two folders up) says which model and data set it belongs to, where it is at hand.

Every check runs while the cell is planned, before a run folder exists, and fails in one line: a file that
is not a genbench checkpoint, a checkpoint of another model or of another data spec (naming both), weights
that do not fit the model's config (another preset or ``--set`` width).  The checkpoint's sha256 enters the
cell's identity, so its run id differs from a trained cell's and from another checkpoint's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.io import file_sha256, load_checkpoint
from genbench.model import DataSpec, GenerativeModel

HINT = "give a genbench checkpoint: a run folder's checkpoints/best.pt or last.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be scored; one line saying why and what to give instead."""


@dataclass
class Checkpoint:
    """A loaded genbench checkpoint and what it says about itself."""

    path: Path
    blob: dict[str, Any]
    sha256: str
    model: str | None  # the model it is of, where known
    data: dict[str, int] | None  # its DataSpec as a dict, where known
    dataset: str | None  # the data set's name, where known (its run folder's config.json)
    preset: str | None = None  # the preset it was trained with, where known (its run folder's config.json)

    @property
    def step(self) -> int:
        return int(self.blob["model"]["step"])

    @property
    def seconds(self) -> float:
        return float(self.blob.get("seconds") or 0.0)

    @property
    def validation(self) -> tuple[float | None, int | None]:
        """(validation bits/dim, step) when the checkpoint holds the validation-selected weights, else (None, None)."""
        best_val, best_step = self.blob.get("best_val"), self.blob.get("best_step")
        if best_val is not None and best_step is not None and int(best_step) == self.step:
            return float(best_val), int(best_step)
        return None, None

    def identity(self) -> dict[str, Any]:
        """What the cell's identity (and run id) records of it."""
        return {"sha256": self.sha256, "file": self.path.name, "step": self.step}


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and check a genbench checkpoint (``weights_only=True``); one-line CheckpointErrors."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"--checkpoint {path}: no such file; {HINT}")
    try:
        blob = load_checkpoint(p, "cpu")
    except Exception as exc:
        raise CheckpointError(f"--checkpoint {path} is not a genbench checkpoint (it does not load with weights_only: "
                              f"{type(exc).__name__}); {HINT}") from None
    model = blob.get("model") if isinstance(blob, dict) else None
    if not (isinstance(model, dict) and isinstance(model.get("networks"), dict) and "step" in model):
        raise CheckpointError(f"--checkpoint {path} is not a genbench checkpoint (no model networks and step: a bare "
                              f"state_dict?); {HINT}")
    ident = blob.get("identity") if isinstance(blob.get("identity"), dict) else {}
    name, data, dataset, preset = ident.get("model"), ident.get("data"), None, None
    config = p.resolve().parent.parent / "config.json"  # runs/<id>/checkpoints/<name>.pt
    if config.is_file():
        try:
            recorded = json.loads(config.read_text()).get("identity", {})
            name, dataset, preset = name or recorded.get("model"), recorded.get("dataset"), recorded.get("preset")
        except (OSError, ValueError, AttributeError):
            pass
    return Checkpoint(p, blob, file_sha256(p), name, data, dataset, preset)


def _spec_text(spec: dict[str, int] | DataSpec) -> str:
    d = spec.to_dict() if isinstance(spec, DataSpec) else spec
    return f"{d.get('channels')}x{d.get('height')}x{d.get('width')}, K={d.get('levels')}"


def check_fits(ckpt: Checkpoint, model_name: str, spec: DataSpec, dataset: str) -> None:
    """A checkpoint of another model or of another data spec is a one-line error naming both."""
    if ckpt.model is not None and ckpt.model != model_name:
        raise CheckpointError(f"--checkpoint {ckpt.path} is of model {ckpt.model!r}, not {model_name!r}; "
                              f"run it with --models {ckpt.model}")
    where = f" ({ckpt.dataset})" if ckpt.dataset else ""
    if ckpt.data is not None and dict(ckpt.data) != spec.to_dict():
        raise CheckpointError(f"--checkpoint {ckpt.path} was trained on data {_spec_text(ckpt.data)}{where}, but "
                              f"{dataset} is {_spec_text(spec)}; score it on the data set it was trained on")
    if ckpt.data is None and ckpt.dataset is not None and ckpt.dataset != dataset:
        raise CheckpointError(f"--checkpoint {ckpt.path} was trained on {ckpt.dataset}, not {dataset}; "
                              f"score it with --dataset {ckpt.dataset}")


def load_weights(model: GenerativeModel, ckpt: Checkpoint) -> None:
    """The checkpoint's weights (networks, averaged copies, optimisers, step) into ``model``; weights that do not fit
    its config are a one-line error."""
    try:
        model.load_state_dict(ckpt.blob["model"])
    except Exception as exc:
        why = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:160]
        trained = f" (it was trained with --preset {ckpt.preset})" if ckpt.preset else ""
        raise CheckpointError(f"--checkpoint {ckpt.path} does not fit model {model.name!r} with this config: {why}; "
                              f"use the --preset and --set values it was trained with{trained}") from None


def prepare(path: str | Path, model_cls: type[GenerativeModel], config: Any, spec: DataSpec, dataset: str) -> Checkpoint:
    """Read ``path``, check it is of ``model_cls`` and ``spec``, and that its weights fit a model built with
    ``config`` (built on the CPU and thrown away): every error while planning, before a run folder exists."""
    ckpt = read_checkpoint(path)
    check_fits(ckpt, model_cls.name, spec, dataset)
    load_weights(model_cls(config, spec, "cpu"), ckpt)
    return ckpt


def with_checkpoint(cells: list, path: str) -> list:
    """The cells of ``genbench run --checkpoint PATH``: one model's, each scoring PATH's weights (absolute path)."""
    import dataclasses

    models = sorted({c.model for c in cells})
    if len(models) != 1:
        raise CheckpointError(f"--checkpoint holds one model's weights; give that one model with --models "
                              f"(got {', '.join(models)})")
    resolved = str(Path(path).expanduser().resolve())
    return [dataclasses.replace(c, checkpoint=resolved) for c in cells]
