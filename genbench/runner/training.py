"""The training loop every model goes through: seeded batch order, budget, validation-based checkpoint
selection, checkpoints with every random state, curves, and sample metrics at a set cadence.

Checkpoints (``checkpoints/``): ``last.pt`` every ``checkpoint_every_steps`` steps and every
``checkpoint_every_seconds`` seconds of wall time (whichever comes first) and at the end of training, the one it
replaced kept as ``previous.pt``; ``best.pt`` whenever the validation score improves.  Each is written atomically
and holds the model, optimisers, step, budget used, selection state and every random state, so a resumed run
continues exactly where the checkpoint was taken.  ``resume`` takes the newest checkpoint that loads and is
consistent (the validation-selected weights it refers to are at hand); a damaged one is moved aside to
``*.corrupt`` with a warning.
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from genbench.data.base import DataSplits
from genbench.io import atomic_torch_save, atomic_write_text, load_checkpoint, load_checkpoint_or_none, move_aside
from genbench.metrics.likelihood import likelihood_images, nll_over, summarise
from genbench.model import GenerativeModel, ModelConfig
from genbench.progress import Progress, muted, resolve_mode
from genbench.runner.device import capture_rng, preserved_rng, restore_rng
from genbench.runner.precision import fp32_block, loss_scaling_for, training_block

log = logging.getLogger("genbench")

CHECKPOINT_EVERY_STEPS = 500
CHECKPOINT_EVERY_SECONDS = 60.0
RESUME_FROM = ("last", "previous", "best")  # every checkpoint a run may resume from
CURVE_EVERY_STEPS = 10
MIN_LOSS_SCALE = 2.0 ** -16  # an fp16 run whose loss scale falls below this overflows at every step: diverged

SampleScorer = Callable[[], dict[str, float]]
#: called with (step, values) for every curve point (losses, validation bits/dim, sample scores): the trackers
CurveListener = Callable[[int, dict[str, float]], None]


class DivergenceError(FloatingPointError):
    """A model produced a NaN/Inf loss or sample; the cell stops and is recorded as failed."""


class Trainer:
    """The training loop: seeded batch order, budget, validation selection, checkpoints, curves.

    ``sample_scorer``, when given, is called every ``config.sample_every`` steps (model in eval mode, every
    global random state put back after it, its time not counted as training) and its scores are added to
    the curves beside the step.  ``progress``: the cell's :class:`~genbench.progress.Progress` (a bar on a
    terminal, a line every few seconds in a log, always in log.txt), or True/False (a terminal's, or none).
    """

    def __init__(self, model: GenerativeModel, data: DataSplits, config: ModelConfig, seed: int, run_dir: Path,
                 device: torch.device, progress: bool | str | Progress, sample_scorer: SampleScorer | None = None,
                 on_curve: CurveListener | None = None,
                 checkpoint_every_steps: int | None = CHECKPOINT_EVERY_STEPS,
                 checkpoint_every_seconds: float | None = CHECKPOINT_EVERY_SECONDS) -> None:
        self.model, self.data, self.config, self.seed = model, data, config, seed
        self.run_dir, self.device = run_dir, device
        self.progress = progress if isinstance(progress, Progress) else Progress(model.name, resolve_mode(progress))
        self.sample_scorer = sample_scorer
        self.on_curve = on_curve
        self.checkpoint_every_steps = checkpoint_every_steps
        self.checkpoint_every_seconds = checkpoint_every_seconds
        self.ckpt_dir = run_dir / "checkpoints"
        self.seconds = 0.0
        self.best_val: float | None = None
        self.best_val_stderr = float("nan")  # standard error over validation images of ``best_val``
        self.best_step: int | None = None
        self.curves: list[dict[str, float]] = []
        self.steps_trained = 0
        self.val_seconds = 0.0
        self.sample_seconds = 0.0
        # fp16: a GradScaler per optimiser, read by genbench.nn.optim.optimiser_step (None for fp32 / bf16)
        self.loss_scaling = loss_scaling_for(getattr(config, "precision", "fp32"), device, model)

    # the batch order is a function of (seed, epoch) so a resumed run sees the same batches
    def batch(self, step: int, x: torch.Tensor) -> torch.Tensor:
        bs = min(self.config.batch_size, len(x))
        per_epoch = max(1, len(x) // bs)
        epoch, pos = divmod(step, per_epoch)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return x[perm[pos * bs : (pos + 1) * bs]]

    def validate(self) -> tuple[float, float, str | None]:
        """Mean validation bits/dim of the model's primary likelihood estimate and its standard error over the
        validation images (``metrics.likelihood.summarise``: sample sd / sqrt(n); for a stochastic bound it
        includes the estimator's own noise, drawn independently per image), and None; during a preliminary
        training stage (``GenerativeModel.preliminary_stage``) the stage's criterion instead, and the stage's name."""
        stage = self.model.preliminary_stage()
        with fp32_block(self.device):  # likelihoods always in fp32 (genbench.runner.precision)
            images = likelihood_images(self.data, "val", self.config)
            if stage is None:
                nats = nll_over(self.model, images, 100, self.device, primary_only=True)["primary"][1]
            else:
                nats = stage_criterion_over(self.model, images, 100, self.device)
        self.model.train(True)
        return (*summarise(nats, self.data.spec.dims), stage)

    def evaluate(self) -> str:
        """Validate; the score competes for ``best.pt`` (``consider``), or, during a preliminary stage, goes to the
        curves under the stage's name and to the model (``observe_stage_validation``).  Returns the curve key."""
        bpd, stderr, stage = self.validate()
        if stage is None:
            self.consider(bpd, stderr)
            return "val_bits_per_dim"
        key = f"val_{stage}_bits_per_dim"
        self.record_curve({"step": self.model.step, "seconds": self.seconds, key: bpd, f"{key}_stderr": stderr})
        self.model.observe_stage_validation(bpd, stderr)
        return key

    def score_samples(self) -> None:
        """Sample metrics at this step into the curves (training time and random state unaffected)."""
        assert self.sample_scorer is not None
        t0 = time.perf_counter()
        with preserved_rng(), muted():  # its draws are not a phase of the cell's progress
            scores = self.sample_scorer()
        self.model.train(True)
        self.sample_seconds += time.perf_counter() - t0
        self.record_curve({"step": self.model.step, "seconds": self.seconds, **scores})

    def record_curve(self, point: dict[str, float]) -> None:
        """One point of the curves (curves.csv), also handed to ``on_curve`` (the run's trackers)."""
        self.curves.append(point)
        if self.on_curve is not None:
            self.on_curve(int(point["step"]), {k: float(v) for k, v in point.items() if k != "step"})

    def save(self, name: str) -> None:
        path = self.ckpt_dir / f"{name}.pt"
        blob = {"model": self.model.state_dict(), "seconds": self.seconds, "best_val": self.best_val,
                "best_val_stderr": self.best_val_stderr, "best_step": self.best_step, "rng": capture_rng()}
        if self.loss_scaling is not None:  # fp16: the scales, so a resumed run does not re-learn them
            blob["loss_scaling"] = self.loss_scaling.state_dict()
        blob["identity"] = {"model": self.model.name, "data": self.data.spec.to_dict()}  # for genbench run --checkpoint
        if name == "last" and path.exists():
            os.replace(path, self.ckpt_dir / "previous.pt")  # a second good checkpoint, should the newest be damaged
        atomic_torch_save(path, blob)
        atomic_write_text(self.run_dir / "curves.csv", rows_frame_curves(self.curves))
        log.info("checkpoint %s at step %d", path.name, self.model.step)

    def _newest_good_checkpoint(self) -> tuple[str, dict] | None:
        """The newest checkpoint (by step) that loads and whose validation-selected weights are at hand.

        A checkpoint that refers to a best step other than its own needs ``best.pt`` of that step, or the
        final selection could not be made as the uninterrupted run makes it; without it the run restarts.
        """
        blobs = {}
        for name in RESUME_FROM:
            path = self.ckpt_dir / f"{name}.pt"
            blob = load_checkpoint_or_none(path, "cpu")  # damaged: moved aside, warned
            if blob is None:
                continue
            try:
                int(blob["model"]["step"]), blob["best_step"], blob["seconds"]
            except (KeyError, TypeError, ValueError) as exc:
                move_aside(path, f"not a genbench checkpoint (no {exc})")
                continue
            blobs[name] = blob
        best = blobs.get("best")
        best_at = int(best["model"]["step"]) if best is not None else None

        def consistent(blob: dict) -> bool:
            return blob["best_step"] is None or blob["best_step"] == blob["model"]["step"] or blob["best_step"] == best_at

        usable = [(int(b["model"]["step"]), -i, n) for i, (n, b) in enumerate(blobs.items()) if consistent(b)]
        if not usable:
            return None
        name = max(usable)[2]
        return name, blobs[name]

    def resume(self) -> None:
        if not self.ckpt_dir.is_dir():
            return
        found = self._newest_good_checkpoint()
        if found is None:
            if any(self.ckpt_dir.glob("*.corrupt")):
                log.warning("%s: no usable checkpoint left; training restarts from step 0", self.run_dir.name)
            return
        name, blob = found
        if name != "last":
            log.warning("%s: resuming from checkpoints/%s.pt (the newest usable checkpoint)", self.run_dir.name, name)
        self.model.load_state_dict(blob["model"])
        self.seconds = float(blob["seconds"])
        self.best_val, self.best_step = blob["best_val"], blob["best_step"]
        self.best_val_stderr = float(blob.get("best_val_stderr", float("nan")))  # absent before 0.3
        if self.loss_scaling is not None and "loss_scaling" in blob:
            self.loss_scaling.load_state_dict(blob["loss_scaling"])
        if "rng" in blob:
            skipped = restore_rng(blob["rng"])
            if skipped:
                log.warning("resumed without the checkpoint's %s random state (another machine)", ", ".join(skipped))
        else:  # checkpoints written before every random state was kept
            torch.set_rng_state(blob["torch_rng"])
        curves = self.run_dir / "curves.csv"
        if curves.exists():
            import pandas as pd
            try:
                frame = pd.read_csv(curves)
                self.curves = frame[frame["step"] <= self.model.step].to_dict("records")
            except (OSError, ValueError, KeyError, pd.errors.EmptyDataError):
                log.warning("%s is unreadable; the curves restart at step %d", curves, self.model.step)
        log.info("resumed %s at step %d (%.1fs trained)", self.run_dir.name, self.model.step, self.seconds)

    def done(self) -> bool:
        c = self.config
        return (c.max_steps is not None and self.model.step >= c.max_steps) or (
            c.max_minutes is not None and self.seconds >= 60.0 * c.max_minutes
        )

    def train(self) -> None:
        c = self.config
        if c.max_steps is None and c.max_minutes is None:
            raise ValueError("no training budget: set max_steps or max_minutes (--steps / --minutes)")
        self.resume()
        x_train = self.data.unit("train")
        has_lik = self.model.likelihood is not None
        by_steps = c.max_steps is not None
        score_every = c.sample_every if self.sample_scorer is not None else None
        progress, shown = self.progress, {}  # shown: the figures of the progress line (losses, validation)
        progress.phase("train", total=c.max_steps if by_steps else 60 * c.max_minutes, unit="step" if by_steps else "s",
                       start=self.model.step if by_steps else self.seconds)
        self.model.train(True)
        last_ckpt = time.perf_counter()
        every_steps, every_seconds = self.checkpoint_every_steps, self.checkpoint_every_seconds
        while not self.done():
            t0 = time.perf_counter()
            x = self.batch(self.model.step, x_train).to(self.device)
            # bf16/fp16 runs: the step's products at reduced precision, weights in fp32; fp16 scales the loss
            with training_block(c.precision, self.device, self.loss_scaling):
                losses = self.model.train_step(x)
            self.model.step += 1
            if self.loss_scaling is not None:
                losses = {**losses, **self.loss_scaling.stats()}
                if 0 < losses["loss_scale"] < MIN_LOSS_SCALE:
                    self.save("diverged")
                    raise DivergenceError(f"{self.model.name} diverged at step {self.model.step}: fp16 gradients "
                                          f"overflow at every step (loss scale {losses['loss_scale']:.3g})")
            bad = {k: v for k, v in losses.items() if not math.isfinite(float(v))}
            if bad:
                self.save("diverged")
                raise DivergenceError(f"{self.model.name} diverged at step {self.model.step}: {bad}")
            self.seconds += time.perf_counter() - t0  # training time: validation and sample scoring are not counted
            if has_lik and (self.model.step % c.eval_every == 0):
                v0 = time.perf_counter()
                key = self.evaluate()
                shown["val_bpd" if key == "val_bits_per_dim" else key.removesuffix("_bits_per_dim")] = self.curves[-1][key]
                self.val_seconds += time.perf_counter() - v0
            if self.model.step % CURVE_EVERY_STEPS == 0 or self.model.step == 1:
                self.record_curve({"step": self.model.step, "seconds": self.seconds, **{k: float(v) for k, v in losses.items()}})
                shown.update(list(losses.items())[:3])
            if score_every and self.model.step % score_every == 0:
                self.score_samples()
            if by_steps:
                progress.update(self.model.step, **shown)
            else:
                progress.update(min(self.seconds, 60 * c.max_minutes), step=self.model.step, **shown)
            if (every_steps and self.model.step % every_steps == 0) or (
                    every_seconds is not None and time.perf_counter() - last_ckpt > every_seconds):
                self.save("last")
                last_ckpt = time.perf_counter()
        if has_lik and self.best_step != self.model.step:
            progress.phase("validation (final step)")
            self.evaluate()
        self.save("last")
        self.steps_trained = self.model.step
        if has_lik and self.best_step is not None and self.best_step != self.model.step:
            log.info("loading validation-selected checkpoint from step %d (%.4f bits/dim)", self.best_step, self.best_val)
            self.model.load_state_dict(load_checkpoint(self.ckpt_dir / "best.pt", self.device)["model"])

    def consider(self, val_bpd: float, stderr: float = float("nan")) -> None:
        """A validation score (and its standard error) into the curves; the best so far is kept as best.pt."""
        self.record_curve({"step": self.model.step, "seconds": self.seconds, "val_bits_per_dim": val_bpd,
                           "val_bits_per_dim_stderr": stderr})
        if self.best_val is None or val_bpd < self.best_val:
            self.best_val, self.best_val_stderr, self.best_step = val_bpd, stderr, self.model.step
            self.save("best")


def stage_criterion_over(model: GenerativeModel, x_unit: torch.Tensor, batch_size: int,
                         device: torch.device) -> torch.Tensor:
    """``model.stage_criterion`` over ``x_unit`` in batches, nats per image (float64, CPU), eval mode, in fp32."""
    model.train(False)
    parts = []
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
        for i in range(0, len(x_unit), batch_size):
            nats = model.stage_criterion(x_unit[i : i + batch_size].to(device)).detach().double().cpu().reshape(-1)
            if not torch.isfinite(nats).all():
                raise FloatingPointError(f"model {model.name!r} returned a non-finite stage criterion")
            parts.append(nats)
    return torch.cat(parts)


def rows_frame_curves(curves: list[dict[str, float]]) -> str:
    import pandas as pd

    return pd.DataFrame(curves).to_csv(index=False)
