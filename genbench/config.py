"""Resolving a model's config: dataclass defaults <- preset <- user overrides, and its hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from genbench.model import LARGE_IMAGE_DIMS, DataSpec, GenerativeModel, ModelConfig, large_images  # noqa: F401 (re-exported)


class ConfigError(ValueError):
    """A bad preset or override; the message is one line that says what to do."""


#: preset -> the caps on large images (``ModelConfig.nll_val_images`` / ``nll_test_images``), for every family with a
#: likelihood alike.  On 28x28 a diffusion bound costs 25-65 network calls per image: the whole 10,000-image test split
#: would take hours on a CPU.  The spread of bits/dim between Fashion-MNIST test images is ~0.9-1.0 bits/dim (1,000
#: images gave standard errors of 0.028-0.032, bench/results/fashion_quick_diffusion.md; the standard LDM's ELBO on
#: 2,500 images 0.0202), so 3,000 images bring the standard error to ~0.018, under issue 18's 0.02; the diffusion
#: families draw fewer t per image there to keep the cost (``large_presets`` in their plugins).  500 validation
#: images select checkpoints.  ``--set nll_test_images=none`` restores the whole split (rows record n either way).
LIKELIHOOD_IMAGE_CAPS: dict[str, dict[str, int]] = {
    "quick": {"nll_val_images": 500, "nll_test_images": 3000},
    "standard": {"nll_val_images": 500, "nll_test_images": 3000},
}
#: preset -> what every family gets on large images whatever its own preset says: the leaderboard's shared budget
#: (issue 20).  "standard": 20 minutes of training (wall clock on 2 CPU cores), in bf16 where the hardware
#: multiplies it natively ("auto"; likelihoods stay fp32).  Measured 2026-12-01 on 28x28 (2 cores, AVX512-BF16,
#: each family's standard network and batch, median of 3 steps): bf16 / fp32 ms per training step DDPM 672 / 1141,
#: VDM 612 / 1126, VAE 355 / 940, GAN 105 / 203, PixelCNN 1265 / 2097: 1.7-2.6x more steps in the same budget.
#: A family's own preset chooses how to spend the budget (its max_steps, schedule, samplers); ``--set`` still wins.
LARGE_IMAGE_BUDGETS: dict[str, dict[str, Any]] = {
    "standard": {"max_minutes": 20.0, "precision": "auto"},
}


def resolve_config(
    model_cls: type[GenerativeModel],
    preset: str,
    data: DataSpec,
    overrides: dict[str, Any] | None = None,
) -> ModelConfig:
    """Build ``model_cls.Config`` from its defaults, then ``preset``, then ``overrides``."""
    try:
        values = model_cls.preset_overrides(preset, data)
    except KeyError:
        raise ConfigError(
            f"model {model_cls.name!r} has no preset {preset!r}; it has: {', '.join(sorted(model_cls.presets)) or 'none'}"
        ) from None
    fields = {f.name: f for f in dataclasses.fields(model_cls.Config)}
    if model_cls.likelihood is not None and preset in LIKELIHOOD_IMAGE_CAPS and large_images(data):
        for key, cap in LIKELIHOOD_IMAGE_CAPS[preset].items():
            if key in fields:
                values.setdefault(key, cap)
    if large_images(data) and model_cls.presets:  # a plugin without presets keeps its Config defaults
        values.update({k: v for k, v in LARGE_IMAGE_BUDGETS.get(preset, {}).items() if k in fields})
    values.update(overrides or {})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"model {model_cls.name!r} has no config field(s) {', '.join(unknown)}; fields: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(model_cls.Config)
    coerced = {k: coerce(v, hints.get(k, Any), k) for k, v in values.items()}
    config = model_cls.Config(**coerced)
    check_runner_fields(config)
    return config


def check_runner_fields(config: ModelConfig) -> None:
    """The fields the runner reads (``ModelConfig``'s own) must make sense whatever the model."""
    if config.sampling_seeds < 1:
        raise ConfigError(f"sampling_seeds must be at least 1, got {config.sampling_seeds}")
    if config.sample_every is not None and config.sample_every < 1:
        raise ConfigError(f"sample_every must be a positive number of steps or none, got {config.sample_every}")
    for key in ("nll_val_images", "nll_test_images"):
        value = getattr(config, key, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
            raise ConfigError(f"{key} must be a whole number of images >= 2 (a standard error needs two) or none "
                              f"for the whole split, got {value!r}; e.g. --set {key}=1000")
    if getattr(config, "precision", "fp32") not in ("fp32", "bf16", "fp16", "auto"):
        raise ConfigError(f"precision must be fp32, bf16, fp16 or auto (--precision), got {config.precision!r}")


def coerce(value: Any, annotation: Any, name: str) -> Any:
    """Coerce a string from the command line to the field's annotated type (others pass through)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if text.lower() in {"none", "null"} and type(None) in typing.get_args(annotation):
        return None
    try:
        if origin in (list, tuple):
            inner = args[0] if args else str
            items = [coerce(item, inner, name) for item in text.strip("[]()").split(",") if item.strip()]
            return items if origin is list else tuple(items)
        target = annotation if not args or origin is None else args[0]
        if origin is typing.Union or str(origin) == "types.UnionType":
            for candidate in args:
                try:
                    return coerce(text, candidate, name)
                except ConfigError:
                    continue
            raise ValueError(text)
        if target is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if target in (int, float, str):
            return target(text)
    except (ValueError, TypeError):
        raise ConfigError(f"config field {name!r}: cannot read {value!r} as {annotation}") from None
    return value


def parse_overrides(items: typing.Iterable[str]) -> dict[str, str]:
    """``["lr=1e-3", "channels=32"]`` -> ``{"lr": "1e-3", "channels": "32"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        out[key.strip()] = val.strip()
    return out


def config_hash(payload: dict[str, Any]) -> str:
    """sha256 of a canonical JSON dump (sorted keys) — the identity of a cell's configuration."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
