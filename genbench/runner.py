"""One cell = (model, data set, seed, config): train -> checkpoint -> sample -> score -> rows.

The runner owns everything that must be the same for every model: seeding, the
batch order, the training budget, validation-based checkpoint selection for
models with a likelihood, timing, quantisation of samples to the data's levels
(exactly once), and the tidy rows.  A cell's folder ``reports/runs/<run_id>/``
holds its resolved config, status, rows, samples, checkpoints, curves and log;
the run id is derived from the config hash, so a rerun skips finished work and
resumes an interrupted one from its last checkpoint.
"""
from __future__ import annotations

import io
import json
import logging
import math
import platform
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genbench
from genbench.config import config_hash, resolve_config
from genbench.data.base import Dataset, DataSplits
from genbench.data.files import dataset_from_path
from genbench.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, load_checkpoint
from genbench.metrics.base import EvalContext, Measurement, SampleSet, default_extractor_names
from genbench.metrics.likelihood import nll_over, summarise
from genbench.model import DataSpec, GenerativeModel, sampler_label
from genbench.plugins import Registry, get_registry
from genbench.results import measurement_row, rows_frame

log = logging.getLogger("genbench")

CHECKPOINT_EVERY_SECONDS = 60.0
CURVE_EVERY_STEPS = 10


class DivergenceError(FloatingPointError):
    """A model produced a NaN/Inf loss; the cell stops and is recorded as failed."""


@dataclass(frozen=True)
class CellSpec:
    """What to run: a model on a data set with a seed, a preset and config overrides."""

    model: str
    dataset: str = "digits"
    seed: int = 0
    preset: str = "quick"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    spec: CellSpec
    state: str  # done | failed | skipped
    run_dir: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def pick_device(name: str = "auto") -> torch.device:
    """The torch device for ``name`` (auto: CUDA when visible).  On CUDA, cuDNN is switched to deterministic
    kernels without autotuning, so that a seed fixes the samples there as it does on the CPU (some cuDNN
    transposed-convolution kernels add with atomics: a GAN's draws differed between two calls without it)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for but no CUDA device is visible; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device


def resolve_dataset(name_or_path: str, registry: Registry, data_root: str | None = None) -> Dataset:
    """A registered data set by name, or a user's ``.npz`` file / PNG folder by path."""
    if name_or_path in registry.datasets:
        return registry.datasets.get(name_or_path)(root=data_root)
    from_path = dataset_from_path(name_or_path)
    if from_path is not None:
        return from_path
    registry.datasets.get(name_or_path)  # raises UnknownNameError with did-you-mean
    raise AssertionError


def _versions(model_cls: type, registry: Registry) -> dict[str, str]:
    entry = registry.models.entries.get(model_cls.name)
    out = {"genbench": genbench.__version__, "torch": torch.__version__, "python": platform.python_version()}
    if entry is not None:
        out["plugin"] = f"{entry.plugin.distribution} {entry.plugin.version}".strip()
    return out


def safe_name(text: str) -> str:
    """A file-name-safe form of a plugin- or user-given name (letters, digits, '-', '_', '.')."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text).strip(".") or "_"


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Runner:
    """Runs cells into ``out_dir/runs``; data sets are loaded once per process."""

    def __init__(
        self,
        out_dir: str | Path = "reports",
        registry: Registry | None = None,
        device: str = "auto",
        progress: bool = True,
        data_root: str | None = None,
        cache_dir: str | Path | None = None,
        extractors: list[str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.extractors = list(extractors) if extractors else default_extractor_names()
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.registry = registry or get_registry()
        self.device = pick_device(device)
        self.progress = progress
        self.data_root = data_root
        self._data: dict[str, DataSplits] = {}

    @property
    def cache_dir(self) -> Path:
        """Feature-extractor and reference-statistics cache (default ``out_dir/cache``)."""
        return self._cache_dir or self.out_dir / "cache"

    def load_data(self, name_or_path: str) -> DataSplits:
        if name_or_path not in self._data:
            self._data[name_or_path] = resolve_dataset(name_or_path, self.registry, self.data_root).load()
        return self._data[name_or_path]

    # ------------------------------------------------------------------ planning
    def plan(self, spec: CellSpec) -> tuple[type[GenerativeModel], Any, DataSplits, str, dict[str, Any]]:
        """Resolve model class, config, data and the cell's identity (raises one-line errors)."""
        model_cls = self.registry.models.get(spec.model)
        data = self.load_data(spec.dataset)
        config = resolve_config(model_cls, spec.preset, data.spec, spec.overrides)
        identity = {
            "model": spec.model, "dataset": spec.dataset, "split": data.split_id, "data_hash": data.data_hash,
            "seed": spec.seed, "preset": spec.preset, "config": config.to_dict(), "device": self.device.type,
            "extractors": self.extractors,
        }
        digest = config_hash(identity)
        dataset_tag = Path(spec.dataset).stem if "/" in spec.dataset or spec.dataset.endswith(".npz") else spec.dataset
        run_id = f"{safe_name(spec.model)}-{safe_name(dataset_tag)}-s{spec.seed}-{digest[:10]}"
        return model_cls, config, data, run_id, {"identity": identity, "config_hash": digest}

    # ------------------------------------------------------------------ one cell
    def run_cell(self, spec: CellSpec) -> CellResult:
        start = time.perf_counter()
        try:
            model_cls, config, data, run_id, ident = self.plan(spec)
        except Exception as exc:
            return CellResult(spec, "failed", None, error=_first_line(exc), seconds=time.perf_counter() - start)
        run_dir = self.out_dir / "runs" / run_id
        status_path = run_dir / "status.json"
        if status_path.exists():
            status = json.loads(status_path.read_text())
            if status.get("state") == "done" and status.get("config_hash") == ident["config_hash"]:
                rows = json.loads((run_dir / "rows.json").read_text())
                return CellResult(spec, "skipped", run_dir, rows=rows, seconds=time.perf_counter() - start)
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.setLevel(logging.INFO)
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        base_status = {
            "run_id": run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed, "preset": spec.preset,
            "config_hash": ident["config_hash"],
        }
        try:
            atomic_write_json(run_dir / "config.json", {**ident, "versions": _versions(model_cls, self.registry)})
            atomic_write_json(status_path, {**base_status, "state": "running"})
            rows = self._execute(spec, model_cls, config, data, run_id, run_dir, ident)
        except KeyboardInterrupt:
            atomic_write_json(status_path, {**base_status, "state": "interrupted"})
            raise
        except Exception as exc:
            error = _first_line(exc)
            log.error("cell %s failed: %s\n%s", run_id, error, traceback.format_exc())
            atomic_write_json(status_path, {**base_status, "state": "failed", "error": error})
            return CellResult(spec, "failed", run_dir, error=error, seconds=time.perf_counter() - start)
        finally:
            log.removeHandler(handler)
            handler.close()
        atomic_write_json(status_path, {**base_status, "state": "done"})
        return CellResult(spec, "done", run_dir, rows=rows, seconds=time.perf_counter() - start)

    def _execute(self, spec, model_cls, config, data, run_id, run_dir, ident) -> list[dict[str, Any]]:
        torch.manual_seed(spec.seed)
        np.random.seed(spec.seed % 2**32)
        model = model_cls(config, data.spec, self.device)
        trainer = Trainer(model, data, config, spec.seed, run_dir, self.device, self.progress)
        trainer.train()
        samples = self.draw_samples(model, data, config, spec.seed, run_dir)
        ctx = EvalContext(
            model=model, data=data, samples=samples, device=self.device, cache_dir=self.cache_dir, seed=spec.seed,
            train_seconds=trainer.seconds, train_steps=trainer.steps_trained, extractor_names=list(self.extractors),
        )
        measurements: list[Measurement] = []
        if trainer.best_val is not None:
            measurements.append(Measurement(
                "val_bits_per_dim", trainer.best_val, "bits/dim", False, kind=model.likelihood_kind or "",
                n=len(data.val), reference="validation", details={"selected_step": trainer.best_step},
            ))
        if data.entropy_bits_per_dim is not None:
            measurements.append(Measurement(
                "data_entropy", data.entropy_bits_per_dim, "bits/dim", None, kind="exact",
                reference=data.split_id, details={"meaning": "true entropy of the data distribution: no model may go below"},
            ))
        for name, entry in self.registry.metrics:
            metric = entry.cls()
            if metric.applies_to(model):
                log.info("metric %s", name)
                measurements.extend(metric.compute(ctx))
        cell = {
            "run_id": run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed, "preset": spec.preset,
            "split": data.split_id, "config_hash": ident["config_hash"], "device": str(self.device),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(model_cls, self.registry),
        }
        rows = [measurement_row(m, cell) for m in measurements]
        atomic_write_json(run_dir / "rows.json", rows)
        atomic_write_text(run_dir / "rows.csv", rows_frame(rows).to_csv(index=False))
        return rows

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def save_grid(levels: torch.Tensor, path: Path, spec: DataSpec) -> None:
        """A 10-wide PNG grid of integer-level images, shown as k/(K-1)."""
        import torchvision.utils as vutils

        grid = vutils.make_grid(spec.to_unit(levels), nrow=10, padding=1, pad_value=1.0)
        png = io.BytesIO()
        vutils.save_image(grid, png, format="png")
        atomic_write_bytes(path, png.getvalue())

    def draw_samples(self, model: GenerativeModel, data: DataSplits, config, seed: int, run_dir: Path) -> list[SampleSet]:
        """Sample ``n_samples`` per sampler setting, time it, quantise once, save .npz + PNG grid."""
        model.train(False)
        self.save_grid(data.test[:100], run_dir / "real_test.png", data.spec)
        out = []
        for i, steps in enumerate(config.sample_steps):
            label = sampler_label(model, steps)
            gen = torch.Generator().manual_seed(seed * 7919 + 17 * i + 1)
            chunks, nfe, seconds = [], 0, 0.0
            remaining = config.n_samples
            while remaining > 0:
                b = min(config.sample_batch_size, remaining)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.inference_mode():
                    x = model.sample(b, steps=steps, generator=gen)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds += time.perf_counter() - t0
                if tuple(x.shape) != (b, *data.spec.shape):
                    raise ValueError(f"{model.name}.sample({b}) returned shape {tuple(x.shape)}, expected {(b, *data.spec.shape)}")
                if not torch.isfinite(x).all():
                    raise DivergenceError(f"{model.name} produced non-finite samples with sampler {label}")
                chunks.append(data.spec.quantise(x.detach().cpu()))
                nfe = model.last_nfe
                remaining -= b
            levels = torch.cat(chunks)
            safe = safe_name(label)
            buf = io.BytesIO()
            np.savez_compressed(buf, samples=levels.numpy(), levels=data.spec.levels)
            atomic_write_bytes(run_dir / "samples" / f"{safe}.npz", buf.getvalue())
            self.save_grid(levels[:100], run_dir / "samples" / f"{safe}.png", data.spec)
            log.info("sampler %s: %d images in %.2fs, NFE %d", label, len(levels), seconds, nfe)
            out.append(SampleSet(label=label, steps=steps, levels=levels, nfe=nfe, seconds=seconds,
                                 batch_size=min(config.sample_batch_size, config.n_samples)))
        return out


class Trainer:
    """The training loop: seeded batch order, budget, validation selection, checkpoints, curves."""

    def __init__(self, model: GenerativeModel, data: DataSplits, config, seed: int, run_dir: Path,
                 device: torch.device, progress: bool) -> None:
        self.model, self.data, self.config, self.seed = model, data, config, seed
        self.run_dir, self.device, self.progress = run_dir, device, progress
        self.ckpt_dir = run_dir / "checkpoints"
        self.seconds = 0.0
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.curves: list[dict[str, float]] = []
        self.steps_trained = 0
        self.val_seconds = 0.0

    # the batch order is a function of (seed, epoch) so a resumed run sees the same batches
    def batch(self, step: int, x: torch.Tensor) -> torch.Tensor:
        bs = min(self.config.batch_size, len(x))
        per_epoch = max(1, len(x) // bs)
        epoch, pos = divmod(step, per_epoch)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return x[perm[pos * bs : (pos + 1) * bs]]

    def validate(self) -> float:
        """Mean validation bits/dim of the model's primary likelihood estimate."""
        nats = nll_over(self.model, self.data.unit("val"), 100, self.device, primary_only=True)["primary"][1]
        self.model.train(True)
        return summarise(nats, self.data.spec.dims)[0]

    def save(self, name: str) -> None:
        atomic_torch_save(self.ckpt_dir / f"{name}.pt", {
            "model": self.model.state_dict(), "seconds": self.seconds, "best_val": self.best_val,
            "best_step": self.best_step, "torch_rng": torch.get_rng_state(),
        })
        atomic_write_text(self.run_dir / "curves.csv", rows_frame_curves(self.curves))

    def resume(self) -> None:
        last = self.ckpt_dir / "last.pt"
        if not last.exists():
            return
        blob = load_checkpoint(last, "cpu")
        self.model.load_state_dict(blob["model"])
        self.seconds = float(blob["seconds"])
        self.best_val, self.best_step = blob["best_val"], blob["best_step"]
        torch.set_rng_state(blob["torch_rng"])
        curves = self.run_dir / "curves.csv"
        if curves.exists():
            import pandas as pd
            self.curves = pd.read_csv(curves).to_dict("records")
        log.info("resumed %s at step %d (%.1fs trained)", self.run_dir.name, self.model.step, self.seconds)

    def done(self) -> bool:
        c = self.config
        return (c.max_steps is not None and self.model.step >= c.max_steps) or (
            c.max_minutes is not None and self.seconds >= 60.0 * c.max_minutes
        )

    def train(self) -> None:
        from tqdm.auto import tqdm

        c = self.config
        if c.max_steps is None and c.max_minutes is None:
            raise ValueError("no training budget: set max_steps or max_minutes (--steps / --minutes)")
        self.resume()
        x_train = self.data.unit("train")
        has_lik = self.model.likelihood is not None
        by_steps = c.max_steps is not None
        bar = tqdm(
            total=c.max_steps if by_steps else round(60 * c.max_minutes), initial=self.model.step if by_steps else int(self.seconds),
            desc=f"train {self.model.name}", unit="step" if by_steps else "s", disable=not self.progress, leave=False,
        )
        self.model.train(True)
        last_ckpt = time.perf_counter()
        while not self.done():
            t0 = time.perf_counter()
            x = self.batch(self.model.step, x_train).to(self.device)
            losses = self.model.train_step(x)
            self.model.step += 1
            bad = {k: v for k, v in losses.items() if not math.isfinite(float(v))}
            if bad:
                self.save("diverged")
                raise DivergenceError(f"{self.model.name} diverged at step {self.model.step}: {bad}")
            self.seconds += time.perf_counter() - t0  # training time: validation is not counted
            if has_lik and (self.model.step % c.eval_every == 0):
                v0 = time.perf_counter()
                self.consider(self.validate())
                self.val_seconds += time.perf_counter() - v0
            if self.model.step % CURVE_EVERY_STEPS == 0 or self.model.step == 1:
                self.curves.append({"step": self.model.step, "seconds": self.seconds, **{k: float(v) for k, v in losses.items()}})
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(losses.items())[:3]})
            bar.update(1 if by_steps else max(0, int(self.seconds) - bar.n))
            if time.perf_counter() - last_ckpt > CHECKPOINT_EVERY_SECONDS:
                self.save("last")
                last_ckpt = time.perf_counter()
        bar.close()
        if has_lik and self.best_step != self.model.step:
            self.consider(self.validate())
        self.save("last")
        self.steps_trained = self.model.step
        if has_lik and self.best_step is not None and self.best_step != self.model.step:
            log.info("loading validation-selected checkpoint from step %d (%.4f bits/dim)", self.best_step, self.best_val)
            self.model.load_state_dict(load_checkpoint(self.ckpt_dir / "best.pt", self.device)["model"])

    def consider(self, val_bpd: float) -> None:
        self.curves.append({"step": self.model.step, "seconds": self.seconds, "val_bits_per_dim": val_bpd})
        if self.best_val is None or val_bpd < self.best_val:
            self.best_val, self.best_step = val_bpd, self.model.step
            self.save("best")


def rows_frame_curves(curves: list[dict[str, float]]) -> str:
    import pandas as pd

    return pd.DataFrame(curves).to_csv(index=False)
