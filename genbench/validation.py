"""Every check of a planned grid, made before the first training step.

``genbench run`` plans every cell first (names, presets, overrides, data: one-line errors from planning), then
calls ``validate_grid``: numbers a config must hold, the data's alphabet, repeated cells, the runner's own
options and the output folder.  A failed check raises ``ValidationError`` whose message is one line naming the
option and the fix; nothing has been written when it is raised.

Numeric config fields are checked by rules looked up by field name (``FIELD_RULES``, then ``PATTERN_RULES``),
so a plugin's config gets the same checks for the fields it shares with others (``lr``, ``batch_size``...);
every other int or float field must at least be finite.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.model import ModelConfig

if TYPE_CHECKING:
    from genbench.runner.cells import CellPlan

MAX_LEVELS = 65536  # K: a likelihood model holds K numbers per sub-pixel of every image in a batch


class ValidationError(ValueError):
    """A grid that cannot run as given; the message is one line naming the option and the fix."""


@dataclass(frozen=True)
class Rule:
    """What a numeric field must be: at least ``minimum`` (above it when ``exclusive``), a whole number when
    ``integer``, None allowed when ``optional``; ``meaning`` and ``example`` make the message."""

    minimum: float
    meaning: str
    example: str
    exclusive: bool = False
    integer: bool = False
    optional: bool = False

    def broken_by(self, value: Any) -> bool:
        if value is None:
            return not self.optional
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False  # not a number: the config's own type coercion speaks for it
        if not math.isfinite(value) or (self.integer and float(value) != int(value)):
            return True
        return value <= self.minimum if self.exclusive else value < self.minimum

    def requirement(self) -> str:
        kind = "a whole number" if self.integer else "a finite number"
        bound = f"> {self.minimum:g}" if self.exclusive else f">= {self.minimum:g}"
        return f"{kind} {bound}" + (" or none" if self.optional else "")


FIELD_RULES: dict[str, Rule] = {
    "batch_size": Rule(1, "images per training step", "64", integer=True),
    "max_steps": Rule(0, "the training budget in steps; 0 scores the weights as built or loaded", "1000",
                      integer=True, optional=True),
    "max_minutes": Rule(0, "the training budget in minutes", "5", exclusive=True, optional=True),
    "eval_every": Rule(1, "steps between validation scores", "250", integer=True),
    "n_samples": Rule(2, "samples per sampler setting; FID needs at least 2", "1000", integer=True),
    "sample_batch_size": Rule(1, "images per sampling batch", "500", integer=True),
    "sampling_seeds": Rule(1, "independent draws per sampler setting", "1", integer=True),
    "sample_every": Rule(1, "steps between sample metrics during training", "none", integer=True, optional=True),
    "sample_steps": Rule(1, "sampler steps (none = the model's default sampler)", "none,50", integer=True,
                         optional=True),
}
PATTERN_RULES: list[tuple[re.Pattern[str], Rule]] = [
    (re.compile(r"(^|_)lr($|_)"), Rule(0, "a learning rate", "1e-3", exclusive=True)),
]
FINITE = Rule(-math.inf, "a number", "a finite value", optional=True)
FLAGS = {"max_steps": "--steps", "max_minutes": "--minutes", "n_samples": "--n-samples"}


def rule_for(name: str) -> Rule:
    """The rule of a config field: by name, else by pattern, else "finite"."""
    if name in FIELD_RULES:
        return FIELD_RULES[name]
    return next((rule for pattern, rule in PATTERN_RULES if pattern.search(name)), FINITE)


def _option(name: str, value: Any) -> str:
    shown = "none" if value is None else value
    return f"{FLAGS[name]} {shown}" if name in FLAGS else f"--set {name}={shown}"


def _fix(name: str, rule: Rule) -> str:
    return f"{FLAGS[name]} {rule.example}" if name in FLAGS else f"--set {name}={rule.example}"


def check_config(config: ModelConfig, model: str, preset: str, given: Iterable[str] = ()) -> None:
    """Every numeric field of ``config`` against its rule; ``given`` names the fields the user set."""
    given = set(given)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        rule = rule_for(f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not any(rule.broken_by(v) for v in values) and (values or f.name not in FIELD_RULES):
            continue
        where = (f"{_option(f.name, value)}" if f.name in given
                 else f"preset {preset!r} of model {model!r} sets {f.name}={value}")
        raise ValidationError(f"{where}: {f.name} must be {rule.requirement()} ({rule.meaning}); "
                              f"use e.g. {_fix(f.name, rule)}")
    if getattr(config, "max_steps", 0) is None and getattr(config, "max_minutes", 0) is None:
        raise ValidationError(f"model {model!r} has no training budget (max_steps and max_minutes are none); "
                              "use e.g. --steps 1000 or --minutes 5")


def check_request(models: str | None, datasets: str | None, seeds: str | None) -> None:
    """Options that name nothing: ``--models ""``, ``--dataset ""``, ``--seeds ""`` (None = not given)."""
    for flag, text, example in (("--models", models, "vae,ddpm or all"), ("--dataset", datasets, "digits"),
                                ("--seeds", seeds, "0,1,2")):
        if text is not None and not [t for t in text.split(",") if t.strip()]:
            raise ValidationError(f"{flag} {text!r} names nothing; give e.g. {flag} {example}")


def check_plans(plans: Sequence[CellPlan]) -> None:
    """Each planned cell: its config, its data's alphabet, and that no cell appears twice."""
    if not plans:
        raise ValidationError("the grid has no cells; give --models, --dataset and --seeds (or a grid file)")
    for plan in plans:
        check_config(plan.config, plan.spec.model, plan.spec.preset, plan.spec.overrides)
        levels = plan.data.spec.levels
        if levels > MAX_LEVELS:
            raise ValidationError(
                f"--dataset {plan.spec.dataset}: the data have {levels} levels per sub-pixel; genbench takes at most "
                f"{MAX_LEVELS} (a likelihood model holds K numbers per sub-pixel and image); store fewer levels")
    counts = Counter(p.run_id for p in plans)
    for plan in plans:
        if counts[plan.run_id] > 1:
            s = plan.spec
            raise ValidationError(f"model {s.model!r} on {s.dataset} with seed {s.seed} is in the grid "
                                  f"{counts[plan.run_id]} times; give each seed, model and data set once "
                                  "(--seeds, --models, --dataset)")


def check_positive(option: str, value: float | None, example: str, integer: bool = False) -> None:
    """A runner option that must be a positive (whole) number when given."""
    if value is None:
        return
    if not math.isfinite(value) or value <= 0 or (integer and float(value) != int(value)):
        raise ValidationError(f"{option} {value}: must be a positive {'whole ' if integer else ''}number; "
                              f"use e.g. {option} {example}")


def check_out_dir(out: str | Path, option: str = "--out") -> None:
    """The output folder can be made and written: no file on its path, and a probe file can be created and
    removed in it (or, when it does not exist yet, in its nearest existing parent). Creates nothing that stays."""
    path = Path(out).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ValidationError(f"{option} {out}: {existing} is a file, not a folder; choose a folder path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".genbench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValidationError(f"{option} {out}: cannot write in {existing} ({exc.strerror or exc}); "
                              "choose a writable folder") from None


def validate_grid(plans: Sequence[CellPlan], out_dir: str | Path, *, cell_timeout: float | None = None,
                  checkpoint_every_steps: int | None = None, checkpoint_every_seconds: float | None = None) -> None:
    """Everything ``genbench run`` checks after planning and before the first step (see the module docstring)."""
    check_positive("--cell-timeout", cell_timeout, "3600")
    check_positive("--checkpoint-every-steps", checkpoint_every_steps, "500", integer=True)
    check_positive("--checkpoint-every-seconds", checkpoint_every_seconds, "60")
    check_plans(plans)
    check_out_dir(out_dir)
