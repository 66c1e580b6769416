"""Resolving a model's config: dataclass defaults <- preset <- user overrides, and its hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from genbench.model import DataSpec, GenerativeModel, ModelConfig


class ConfigError(ValueError):
    """A bad preset or override; the message is one line that says what to do."""


#: images above this many sub-pixels (16x16 grey) are "large": the quick / standard presets cap the likelihood's images
LARGE_IMAGE_DIMS = 256
#: preset -> the caps on large images (``ModelConfig.nll_val_images`` / ``nll_test_images``), for every family with a
#: likelihood alike.  On 28x28 a diffusion bound costs ~65 network calls per image: the whole 10,000-image test split
#: would take hours on a CPU; 1,000 images give a standard error of ~0.02 bits/dim, 500 validation images select
#: checkpoints.  ``--set nll_test_images=none`` restores the whole split (rows record n either way).
LIKELIHOOD_IMAGE_CAPS: dict[str, dict[str, int]] = {
    "quick": {"nll_val_images": 500, "nll_test_images": 1000},
    "standard": {"nll_val_images": 500, "nll_test_images": 1000},
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
    if model_cls.likelihood is not None and preset in LIKELIHOOD_IMAGE_CAPS and data.dims > LARGE_IMAGE_DIMS:
        for key, cap in LIKELIHOOD_IMAGE_CAPS[preset].items():
            if key in fields:
                values.setdefault(key, cap)
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
