"""fp16 with loss scaling on a CUDA device: what ``auto`` picks from the capability, a scaled step, one cell end to
end.  Skipped where no GPU is visible (as tests/test_cuda.py); run by hand on a GPU machine:

    python -m pytest -q tests/runner/test_precision_cuda.py
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genbench.nn.optim import LossScaling, loss_scaling, optimiser_step
from genbench.runner import CellSpec, Runner
from genbench.runner import precision as P

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


def test_auto_follows_the_devices_capability():
    major, _ = torch.cuda.get_device_capability()
    assert P.resolve_precision("auto", "cuda") == ("bf16" if major >= 8 else "fp16")
    assert P.resolve_precision("fp16", "cuda") == "fp16"


def test_an_fp16_step_on_cuda_is_scaled_and_an_overflow_is_skipped():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 1, 3, padding=1)).cuda()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    scaling = LossScaling("cuda", {"opt": opt})
    x = torch.randn(4, 1, 8, 8, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16), loss_scaling(scaling):
        out = net(x)
        assert out.dtype == torch.float16
        result = optimiser_step(opt, (out.float() - x).pow(2).mean(), grad_clip=1.0)
        assert not result.skipped and torch.isfinite(result.grad_norm)
        before = [p.detach().clone() for p in net.parameters()]
        result = optimiser_step(opt, (net(x).float() - x).pow(2).mean() * float("inf"))
    assert result.skipped and all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert scaling.scale() == 2.0 ** 15 and scaling.skipped == 1


def test_an_fp16_ddpm_cell_trains_and_rows_say_fp16(tmp_path, cache_dir):  # needs genbench.config to accept fp16
    from genbench.plugins import build_registry

    registry = build_registry(autoload=True)
    registry.metrics.entries = {k: v for k, v in registry.metrics.entries.items() if k in ("bits_per_dim", "speed")}
    runner = Runner(tmp_path, registry=registry, device="cuda", progress=False, cache_dir=cache_dir)
    result = runner.run_cell(CellSpec("ddpm", "digits", 0, "tiny", {"precision": "fp16"}))
    assert result.state == "done", result.error
    assert {r["precision"] for r in result.rows} == {"fp16"}
