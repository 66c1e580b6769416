"""The trainer's validation curve carries a standard error, and the checkpoint-selected value keeps it (rows,
curves.csv, checkpoints, a resumed run; the row: tests/runner/test_cells.py); its progress goes through the
cell's Progress."""
from __future__ import annotations

import io
import math

import pandas as pd
import torch

from genbench.io import load_checkpoint
from genbench.progress import Progress
from genbench.runner import CellSpec, Runner, Trainer

CONFIG = {"max_steps": 20, "eval_every": 10, "n_samples": 16, "sample_batch_size": 16}


def _trainer(registry, tmp_path, max_steps: int, progress=False) -> Trainer:
    runner = Runner(tmp_path / "out", registry=registry, device="cpu", progress=False)
    plan = runner.plan(CellSpec("independent", "digits", 0, "quick", {**CONFIG, "max_steps": max_steps}))
    run_dir = runner.out_dir / "runs" / plan.run_id
    model = plan.model_cls(plan.config, plan.data.spec)
    return Trainer(model, plan.data, plan.config, 0, run_dir, torch.device("cpu"), progress)


def _reference_bpd(trainer: Trainer) -> tuple[float, float]:
    """Mean validation bits/dim and sd/sqrt(n) computed here from the model's per-image NLL (numpy, float64)."""
    with torch.no_grad():
        nats = trainer.model.nll(trainer.data.unit("val")).double().numpy()
    bpd = nats / (trainer.data.spec.dims * math.log(2.0))
    return float(bpd.mean()), float(bpd.std(ddof=1) / math.sqrt(len(bpd)))


def test_validation_curve_and_selected_value_carry_the_standard_error_over_validation_images(registry, tmp_path):
    trainer = _trainer(registry, tmp_path, 20)
    trainer.train()
    mean, se = _reference_bpd(trainer)  # the reference model's validation score improves every step: step 20 is best
    assert trainer.best_step == 20
    assert math.isclose(trainer.best_val, mean, rel_tol=1e-9) and math.isclose(trainer.best_val_stderr, se, rel_tol=1e-9)
    assert 0 < se < 0.1 * mean
    curves = pd.read_csv(trainer.run_dir / "curves.csv")
    val = curves.dropna(subset=["val_bits_per_dim"])
    assert list(val["step"]) == [10, 20] and (val["val_bits_per_dim_stderr"] > 0).all()
    assert math.isclose(val["val_bits_per_dim_stderr"].iloc[-1], se, rel_tol=1e-9)
    best = load_checkpoint(trainer.run_dir / "checkpoints" / "best.pt", "cpu")
    assert best["best_val_stderr"] == trainer.best_val_stderr


def test_a_resumed_run_keeps_the_selected_standard_error(registry, tmp_path):
    first = _trainer(registry, tmp_path, 20)
    first.train()
    again = _trainer(registry, tmp_path, 20)
    again.resume()
    assert again.best_val_stderr == first.best_val_stderr and again.best_step == 20


def test_training_reports_through_the_cells_progress(registry, tmp_path):
    out = io.StringIO()
    trainer = _trainer(registry, tmp_path, 20, progress=Progress("ind digits s0", "lines", every=1e-9, stream=out))
    trainer.train()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[ind digits s0] train (20 steps)" and "\r" not in out.getvalue()
    assert any(line.startswith("[ind digits s0] train step 20/20 loss=") and " val_bpd=" in line for line in lines)


class _Staged:
    """Mixin: a preliminary stage named "warmup" for the first ``until`` steps whose criterion is twice the NLL
    (so a stage score can never be mistaken for a selection score); records what the trainer hands it."""

    until = 20

    def preliminary_stage(self):
        return "warmup" if self.step < self.until else None

    def stage_criterion(self, x):
        return 2.0 * self.nll(x)

    def observe_stage_validation(self, bits_per_dim, stderr):
        self.observed = [*getattr(self, "observed", []), (self.step, bits_per_dim, stderr)]


def test_a_preliminary_stage_is_validated_on_its_own_criterion_and_never_selects_a_checkpoint(registry, tmp_path):
    plain = _trainer(registry, tmp_path, 40)
    staged_cls = type("StagedIndependent", (_Staged, type(plain.model)), {})
    model = staged_cls(plain.config, plain.data.spec)
    trainer = Trainer(model, plain.data, plain.config, 0, plain.run_dir, torch.device("cpu"), False)
    trainer.train()
    # the trainer validates after the step counter moved on: at step 10 the model is in its stage, at 20..40 not
    steps = [s for s, _, _ in model.observed]
    assert steps == [10]
    curves = pd.read_csv(trainer.run_dir / "curves.csv")
    stage = curves.dropna(subset=["val_warmup_bits_per_dim"])
    assert list(stage["step"]) == [10]
    assert math.isclose(stage["val_warmup_bits_per_dim"].iloc[0], model.observed[0][1], rel_tol=1e-12)
    assert math.isclose(stage["val_warmup_bits_per_dim_stderr"].iloc[0], model.observed[0][2], rel_tol=1e-12)
    val = curves.dropna(subset=["val_bits_per_dim"])
    assert list(val["step"]) == [20, 30, 40]
    assert trainer.best_step == 40  # the reference model improves at every step; step 10 was never a candidate
    mean, se = _reference_bpd(trainer)
    assert math.isclose(trainer.best_val, mean, rel_tol=1e-9)
    assert model.observed[0][1] > 1.5 * min(val["val_bits_per_dim"])
