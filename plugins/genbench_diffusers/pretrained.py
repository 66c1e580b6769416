"""A local diffusers folder: find its UNet2DModel and scheduler config, check them, fingerprint and load them.

Two layouts are read, both with ``from_pretrained(path, local_files_only=True)`` (no network):

  a pipeline folder      ``DDPMPipeline.save_pretrained(DIR)``: DIR/model_index.json, DIR/unet/config.json
                         (+ weights), DIR/scheduler/scheduler_config.json
  a model folder         ``unet.save_pretrained(DIR)`` (DIR/config.json + weights), optionally with
                         ``scheduler.save_pretrained(DIR)`` beside it (DIR/scheduler_config.json)

Every problem is a one-line ConfigError raised while the config is resolved, before a run folder exists.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.config import ConfigError

WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class Folder:
    """Where a folder keeps its network (``unet_dir``, with config.json) and its scheduler config (or None)."""

    root: Path
    unet_dir: Path
    scheduler_config: Path | None

    @property
    def subfolder(self) -> str | None:
        return None if self.unet_dir == self.root else self.unet_dir.name


def locate(path: str) -> Folder:
    """The layout of ``path``; a folder without a config.json (nor unet/config.json) is a one-line error."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"diffusers: pretrained={path!r} is not a folder; give a folder written by "
                          f"unet.save_pretrained(DIR) or pipeline.save_pretrained(DIR)")
    for unet_dir in (root, root / "unet"):
        if (unet_dir / "config.json").is_file():
            break
    else:
        raise ConfigError(f"diffusers: {root} has no config.json (nor unet/config.json); save a UNet2DModel with "
                          f"unet.save_pretrained(DIR) or a pipeline with pipeline.save_pretrained(DIR)")
    sched = next((p for p in (root / "scheduler" / "scheduler_config.json", root / "scheduler_config.json")
                  if p.is_file()), None)
    return Folder(root, unet_dir, sched)


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"diffusers: cannot read {path} ({type(exc).__name__}); is it a diffusers config?") from None
    if not isinstance(value, dict):
        raise ConfigError(f"diffusers: {path} is not a JSON object; is it a diffusers config?")
    return value


def check(folder: Folder) -> dict[str, Any]:
    """The network's config, after checking it is an unconditional UNet2DModel with weights beside it."""
    config = read_json(folder.unet_dir / "config.json")
    kind = config.get("_class_name")
    if kind != "UNet2DModel":
        raise ConfigError(f"diffusers: {folder.unet_dir / 'config.json'} describes a {kind or 'model of unknown class'}; "
                          f"the adapter takes an unconditional UNet2DModel (a DDPMPipeline/DDIMPipeline folder)")
    if not any(p.suffix in WEIGHT_SUFFIXES for p in folder.unet_dir.iterdir()):
        raise ConfigError(f"diffusers: {folder.unet_dir} has a config.json but no weights "
                          f"(*.safetensors or *.bin); save it with save_pretrained")
    if folder.scheduler_config is not None:
        read_json(folder.scheduler_config)
    return config


def fingerprint(folder: Folder) -> str:
    """sha256 over the network's files and the scheduler config (names and bytes): a run's identity follows
    the folder's content, so a folder overwritten with other weights is a new cell, not a cached one."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.unet_dir.iterdir() if p.is_file())
    if folder.scheduler_config is not None:
        files.append(folder.scheduler_config)
    for path in files:
        digest.update(str(path.relative_to(folder.root)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_unet(folder: Folder):
    """The UNet2DModel of ``folder`` (local files only)."""
    from diffusers import UNet2DModel

    kwargs = {"local_files_only": True, "low_cpu_mem_usage": False}  # the default, said: no `accelerate` warning
    if folder.subfolder:
        kwargs["subfolder"] = folder.subfolder
    return UNet2DModel.from_pretrained(str(folder.root), **kwargs)


def scheduler_values(folder: Folder) -> dict[str, Any]:
    """The saved scheduler config without diffusers' private keys ({} when the folder has none)."""
    if folder.scheduler_config is None:
        return {}
    return {k: v for k, v in read_json(folder.scheduler_config).items() if not k.startswith("_")}
