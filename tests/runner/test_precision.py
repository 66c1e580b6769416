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
    with pytest.raises(ValueError, match="fp32, bf16, auto"):
        P.resolve_precision("fp16", "cpu")


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
    assert {"bits_per_dim", "images_per_second", "val_bits_per_dim"} <= {r["metric"] for r in result.rows}


def test_fp32_config_hashes_as_before_and_bad_precision_is_one_line(tmp_path, registry):
    from genbench.config import ConfigError

    runner = Runner(tmp_path, registry=registry, device="cpu", progress=False)
    plain = runner.plan(CellSpec("independent", "digits", 0, "quick", {}))
    fp32 = runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "fp32"}))
    bf16 = runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "bf16"}))
    assert "precision" not in plain.identity["config"] and plain.run_id == fp32.run_id != bf16.run_id
    with pytest.raises(ConfigError, match="precision must be fp32, bf16 or auto"):
        runner.plan(CellSpec("independent", "digits", 0, "quick", {"precision": "half"}))
