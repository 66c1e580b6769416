"""genbench.runner.precision: resolving --precision and --threads, autocast where it belongs, fp32 likelihoods."""
from __future__ import annotations

import types
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from genbench import GenerativeModel, ModelConfig, hookimpl
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.runner import precision as P


# ------------------------------------------------------------------ resolution
def test_auto_is_bf16_only_on_a_cpu_that_reports_bf16(monkeypatch, tmp_path):
    assert P.cpu_has_bf16(flags={"avx512f", "avx512_bf16"}, capability="AVX512")
    assert P.cpu_has_bf16(flags={"amx_bf16"}, capability="AVX2")
    assert not P.cpu_has_bf16(flags={"avx512f", "avx2"}, capability="AVX512")
    assert not P.cpu_has_bf16(flags=set(), capability="DEFAULT")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert P.cpu_flags(cpuinfo) == {"fpu", "sse", "avx512f", "avx512_bf16", "amx_tile"}
    assert P.cpu_flags(tmp_path / "missing") == set()

    assert P.resolve_precision("auto", "cpu", cpu_bf16=True) == "bf16"
    assert P.resolve_precision("auto", "cpu", cpu_bf16=False) == "fp32"
    monkeypatch.setattr(P, "cpu_flags", lambda path="/proc/cpuinfo": {"avx512_bf16"})
    assert P.resolve_precision("auto", torch.device("cpu")) == "bf16"
    monkeypatch.setattr(P, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert P.resolve_precision("auto", torch.device("cpu")) == "fp32"
    # explicit choices are kept whatever the hardware; no choice is fp32
    assert P.resolve_precision("bf16", "cpu", cpu_bf16=False) == "bf16"
    assert P.resolve_precision("fp32", "cpu", cpu_bf16=True) == "fp32"
    assert P.resolve_precision(None, "cpu", cpu_bf16=True) == "fp32"
    with pytest.raises(ValueError, match="fp32, bf16, fp16, auto"):
        P.resolve_precision("half", "cpu")


def test_auto_on_cuda_is_bf16_from_capability_8_else_fp16_and_fp16_is_cuda_only():
    assert P.resolve_precision("auto", "cuda", cuda_bf16=True) == "bf16"
    assert P.resolve_precision("auto", "cuda:1", cuda_bf16=False) == "fp16"  # e.g. a T4 or V100
    assert P.resolve_precision("fp16", "cuda", cuda_bf16=True) == "fp16"  # an explicit choice is kept
    assert P.resolve_precision("auto", "mps") == "fp32"
    for device in ("cpu", "mps"):  # no loss-scaled fp16 there: one line, before any work
        with pytest.raises(ValueError, match="fp16 needs a CUDA device") as err:
            P.resolve_precision("fp16", device)
        assert "\n" not in str(err.value) and "bf16" in str(err.value)
    assert P.DTYPES["fp16"] is torch.float16
    assert P.loss_scaling_for("fp32", "cpu", None) is None and P.loss_scaling_for("bf16", "cpu", None) is None


def test_likelihood_block_turns_tf32_off_on_cuda_only_and_restores_it():
    """cuDNN's default runs fp32 convolutions on TF32 (10-bit mantissa): bits/dim must not."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    try:
        cudnn.allow_tf32, matmul.allow_tf32 = True, False  # PyTorch's defaults
        assert P.tf32_mode("cpu") is None and P.tf32_mode("cuda:0") == "conv"
        with P.fp32_block("cpu"):
            assert cudnn.allow_tf32 and P.tf32_mode("cuda") == "conv"  # a CPU block leaves CUDA flags alone
        with pytest.raises(RuntimeError, match="boom"):  # restored even when the evaluation fails
            with P.fp32_block("cuda"):
                assert not cudnn.allow_tf32 and not matmul.allow_tf32 and P.tf32_mode("cuda") == "off"
                raise RuntimeError("boom")
        assert cudnn.allow_tf32 and not matmul.allow_tf32
        matmul.allow_tf32 = True
        assert P.tf32_mode("cuda") == "conv+matmul"
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def test_threads_follow_affinity_capped_by_the_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(P.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # 1.5 cores -> 2 threads
    assert P.cgroup_cpu_limit(v2) == 1.5 and P.available_cores(v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert P.cgroup_cpu_limit(v2) is None and P.available_cores(v2) == 8
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert P.available_cores(v1) == 3
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert P.available_cores(v1) == 8
    assert P.available_cores(tmp_path / "nothing") == 8
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a core: still one thread
    assert P.resolve_threads("auto", environ={}, root=v2) == 1
    assert P.resolve_threads(None, environ={"OMP_NUM_THREADS": "3"}, root=v2) == 3
    assert P.resolve_threads(5, environ={"OMP_NUM_THREADS": "3"}, root=v2) == 5
    with pytest.raises(ValueError, match="positive"):
        P.resolve_threads(0)
    before = torch.get_num_threads()
    with P.intra_op_threads(2) as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------ autocast inside a run
@dataclass
class ProbeConfig(ModelConfig):
    max_steps: int | None = 3
    eval_every: int = 2
    n_samples: int = 20
    sample_batch_size: int = 20


SEEN: dict[str, set] = {"train": set(), "sample": set(), "nll": set()}


class Probe(GenerativeModel):
    """A linear denoiser that records the dtype its network computes in, by phase (forward hook)."""

    name = "precision-probe"
    Config = ProbeConfig
    likelihood = "exact"

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)
        self.net = nn.Linear(data.dims, data.dims)
        self.networks = {"net": self.net}
        self.optimizers = {"opt": torch.optim.SGD(self.net.parameters(), lr=1e-3)}
        self.phase = "train"
        self.net.register_forward_hook(lambda mod, inp, out: SEEN[self.phase].add(out.dtype))

    def train_step(self, x):
        self.phase = "train"
        loss = (self.net(x.flatten(1)).float() - x.flatten(1)).pow(2).mean()
        self.optimizers["opt"].zero_grad()
        loss.backward()
        self.optimizers["opt"].step()
        return {"loss": float(loss.detach())}

    def sample(self, n, *, steps=None, generator=None):
        self.phase = "sample"
        z = torch.rand(n, self.data.dims, generator=generator)
        return self.net(z).clamp(0, 1).reshape(n, *self.data.shape)

    def nll(self, x):
        self.phase = "nll"
        err = (self.net(x.flatten(1)) - x.flatten(1)).pow(2).sum(1)
        return err + self.data.dims * torch.log(torch.tensor(float(self.data.levels)))


probe_plugin = types.ModuleType("genbench_precision_probe")
probe_plugin.genbench_models = hookimpl(lambda: [Probe])  # type: ignore[attr-defined]


@pytest.mark.parametrize("precision,compute", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_bf16_run_trains_and_samples_in_bf16_scores_likelihood_in_fp32_and_rows_say_so(
        tmp_path, cache_dir, precision, compute):
    registry = build_registry(extra=[probe_plugin], autoload=False)
    # the likelihood and speed metrics only: no feature extractor to fit (keeps the test within seconds)
    registry.metrics.entries = {k: v for k, v in registry.metrics.entries.items() if k in ("bits_per_dim", "speed")}
    for s in SEEN.values():
        s.clear()
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir, threads=1)
    result = runner.run_cell(CellSpec("precision-probe", "digits", 0, "quick", {"precision": precision}))
    assert result.state == "done", result.error
    assert SEEN["train"] == {compute} and SEEN["sample"] == {compute}
    assert SEEN["nll"] == {torch.float32}  # validation and test bits/dim: never in bf16
    assert {r["precision"] for r in result.rows} == {precision}
    assert {r["threads"] for r in result.rows} == {1}
    assert {r["tf32"] for r in result.rows} == {None}  # a CPU has no TF32
    assert {"bits_per_dim", "images_per_second", "val_bits_per_dim"} <= {r["metric"] for r in result.rows}


def test_fp32_config_hashes_as_before_and_bad_precision_is_one_line(tmp_path, registry):
    from genbench.config import ConfigError

    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    plain = runner.plan(CellSpec("independent", "digits", 0, "quick", {}))
    fp32 = runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "fp32"}))
    bf16 = runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "bf16"}))
    assert "precision" not in plain.identity["config"] and plain.run_id == fp32.run_id != bf16.run_id
    with pytest.raises(ConfigError, match="precision must be fp32, bf16,? (fp16 )?or auto"):
        runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "half"}))


def test_fp16_plan_on_a_cpu_fails_in_one_line_before_any_work(tmp_path, registry, monkeypatch):
    import genbench.config as config_module

    # until genbench.config accepts fp16 itself, let it through: the refusal under test is the device's
    monkeypatch.setattr(config_module, "check_runner_fields", lambda config: None)
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "fp16"}))
    assert not (tmp_path / "runs").exists()


class ScaledProbe(Probe):
    """The probe with the shared optimiser step (genbench.nn.optim), as every plugin takes it."""

    name = "precision-probe-scaled"

    def train_step(self, x):
        from genbench.nn.optim import optimiser_step

        self.phase = "train"
        loss = (self.net(x.flatten(1)).float() - x.flatten(1)).pow(2).mean()
        if self.step == 1:  # one overflowing step: skipped by the scaler, not a divergence
            loss = loss * float("inf")
        optimiser_step(self.optimizers["opt"], loss, grad_clip=1.0)
        return {"loss": float(loss.detach()) if self.step != 1 else 0.0}


def test_an_fp16_trainer_scales_the_loss_skips_overflow_and_checkpoints_the_scale(tmp_path, cache_dir):
    """fp16 is CUDA-only in a run; the Trainer's loss-scaling path is device-agnostic, so it is exercised here
    on the CPU's GradScaler with CPU fp16 autocast (tests/runner/test_precision_cuda.py runs it on a GPU)."""
    from genbench.io import load_checkpoint
    from genbench.runner import Trainer

    plugin = types.ModuleType("genbench_precision_probe_scaled")
    plugin.genbench_models = hookimpl(lambda: [ScaledProbe])  # type: ignore[attr-defined]
    registry = build_registry(extra=[plugin], autoload=False)
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir, threads=1)
    plan = runner.plan(CellSpec("precision-probe-scaled", "digits", 0, "quick", {"max_steps": 4, "eval_every": 2}))
    plan.config.precision = "fp16"  # planning refuses fp16 on a CPU; the Trainer itself does not care
    for s in SEEN.values():
        s.clear()
    model = plan.model_cls(plan.config, plan.data.spec)
    trainer = Trainer(model, plan.data, plan.config, 0, tmp_path / "run", torch.device("cpu"), False)
    assert trainer.loss_scaling is not None
    trainer.train()
    assert SEEN["train"] == {torch.float16} and SEEN["nll"] == {torch.float32}
    assert trainer.loss_scaling.skipped == 1 and trainer.loss_scaling.steps == 4
    assert trainer.loss_scaling.scale() == 2.0 ** 15  # 65536 halved once
    first = next(point for point in trainer.curves if "loss" in point)  # the losses' curve point at step 1
    assert first["step"] == 1 and first["skipped_steps"] == 0.0 and first["loss_scale"] == 2.0 ** 16
    blob = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", "cpu")
    assert blob["loss_scaling"]["skipped"] == 1 and set(blob["loss_scaling"]["scalers"]) == {"opt"}

    resumed_model = plan.model_cls(plan.config, plan.data.spec)
    resumed = Trainer(resumed_model, plan.data, plan.config, 0, tmp_path / "run", torch.device("cpu"), False)
    resumed.resume()
    assert resumed.loss_scaling.scale() == 2.0 ** 15 and resumed.loss_scaling.skipped == 1


def test_fp32_and_bf16_trainers_have_no_loss_scaling(tmp_path, registry):
    from genbench.runner import Trainer

    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    for precision in ("fp32", "bf16"):
        plan = runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": precision}))
        model = plan.model_cls(plan.config, plan.data.spec)
        trainer = Trainer(model, plan.data, plan.config, 0, tmp_path / precision, torch.device("cpu"), False)
        assert trainer.loss_scaling is None


class AlwaysOverflowing(ScaledProbe):
    name = "precision-probe-overflowing"

    def train_step(self, x):
        from genbench.nn.optim import optimiser_step

        loss = (self.net(x.flatten(1)).float() - x.flatten(1)).pow(2).mean() * float("inf")
        optimiser_step(self.optimizers["opt"], loss)
        return {"loss": 0.0}


def test_an_fp16_run_whose_every_step_overflows_is_a_divergence(tmp_path, cache_dir):
    from genbench.runner import Trainer
    from genbench.runner.training import DivergenceError

    plugin = types.ModuleType("genbench_precision_probe_overflowing")
    plugin.genbench_models = hookimpl(lambda: [AlwaysOverflowing])  # type: ignore[attr-defined]
    registry = build_registry(extra=[plugin], autoload=False)
    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False, cache_dir=cache_dir, threads=1)
    overrides = {"max_steps": 60, "eval_every": 100}
    plan = runner.plan(CellSpec("precision-probe-overflowing", "digits", 0, "quick", overrides))
    plan.config.precision = "fp16"
    model = plan.model_cls(plan.config, plan.data.spec)
    trainer = Trainer(model, plan.data, plan.config, 0, tmp_path / "run", torch.device("cpu"), False)
    with pytest.raises(DivergenceError, match="overflow at every step"):
        trainer.train()
    assert model.step == 33 and trainer.loss_scaling.skipped == 33  # 2**16 halved 33 times: 2**-17 < 2**-16
    assert (tmp_path / "run" / "checkpoints" / "diverged.pt").exists()
