"""The same promises on a CUDA device: every plugin's contract, the likelihood's normalisation over every image
of the tiny shapes, CPU/CUDA agreement of the likelihood, one runner cell end to end.  Skipped where no GPU
is visible (CI has none); run by hand on a GPU machine:

    python -m pytest -q tests/test_cuda.py
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from genbench.config import resolve_config
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner
from genbench.testing import (
    CONTRACT_SPECS,
    DIGITS_SPEC,
    LIKELIHOOD_SPECS,
    accepts_spec,
    check_likelihood_normalised,
    check_model_contract,
    contract_batch,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")

REGISTRY = build_registry(autoload=True)
MODELS = REGISTRY.models.names()
LIKELIHOOD_MODELS = [m for m in MODELS if REGISTRY.models.get(m).likelihood is not None]


@pytest.mark.parametrize("spec_name", list(CONTRACT_SPECS))
@pytest.mark.parametrize("model_name", MODELS)
def test_model_contract_on_cuda(model_name: str, spec_name: str) -> None:
    check_model_contract(REGISTRY.models.get(model_name), CONTRACT_SPECS[spec_name], device="cuda")


@pytest.mark.parametrize("spec_name", list(LIKELIHOOD_SPECS))
@pytest.mark.parametrize("model_name", LIKELIHOOD_MODELS)
def test_likelihood_sums_to_one_on_cuda(model_name: str, spec_name: str) -> None:
    cls, spec = REGISTRY.models.get(model_name), LIKELIHOOD_SPECS[spec_name]
    if not accepts_spec(cls, spec):
        pytest.skip(f"{model_name} cannot be built on {spec_name}")
    check_likelihood_normalised(cls, spec, device="cuda")


@pytest.mark.parametrize("model_name", MODELS)
def test_likelihood_agrees_between_cpu_and_cuda(model_name: str) -> None:
    """The same weights score the same batch to 1e-4 relative on both devices (TF32 off: full fp32 on CUDA).
    Noise inside a bound is drawn on the CPU from a seeded generator, so the draws are the same too."""
    cls = REGISTRY.models.get(model_name)
    if cls.likelihood is None:
        pytest.skip(f"{model_name} declares no likelihood")
    config = resolve_config(cls, "tiny", DIGITS_SPEC)
    torch.manual_seed(0)
    on_cpu = cls(config, DIGITS_SPEC, "cpu")
    x = contract_batch(DIGITS_SPEC)
    on_cpu.train(True)
    on_cpu.train_step(x)  # a trained step: data-dependent state (scale factors, bounds) is set on both
    on_cpu.step += 1
    on_cuda = cls(config, DIGITS_SPEC, "cuda")
    on_cuda.load_state_dict(on_cpu.state_dict())
    on_cpu.train(False)
    on_cuda.train(False)
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, deterministic=True, allow_tf32=False):
            cpu_nats = on_cpu.nll(x)
            cuda_nats = on_cuda.nll(x.cuda()).cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32  # the other tests run with the user's setting
    assert torch.allclose(cuda_nats.double(), cpu_nats.double(), rtol=1e-4, atol=1e-3), (cpu_nats, cuda_nats)


@pytest.fixture(scope="module")
def cuda_runner(tmp_path_factory) -> Runner:
    root = tmp_path_factory.mktemp("cuda-runner")
    return Runner(root / "out", registry=REGISTRY, device="cuda", progress=False, cache_dir=root / "cache")


@pytest.mark.parametrize("model_name", MODELS)
def test_runner_cell_on_cuda(cuda_runner: Runner, model_name: str) -> None:
    """One tiny cell of each model through the real runner on CUDA: every metric row is finite, the device
    is recorded, and the GPU's peak-memory row is there."""
    result = cuda_runner.run_cell(CellSpec(model_name, "digits", 0, "tiny"))
    assert result.state == "done", result.error
    df = pd.DataFrame(result.rows)
    assert {"fid", "images_per_second", "nfe", "peak_memory"} <= set(df["metric"])
    assert df["device"].astype(str).str.startswith("cuda").all()
    values = df["value"].dropna().astype(float)
    assert values.map(math.isfinite).all(), df[~df["value"].astype(float).map(math.isfinite)]


def test_streamed_feature_statistics_on_cuda_equal_the_cpus() -> None:
    """FID statistics accumulate on the GPU (no copy to the host per batch) and come back equal to the CPU's."""
    from genbench.metrics.extractors import ClassifierNet, weights_sha256
    from genbench.metrics.features import stream_features, tensor_batches
    from genbench.metrics.stats import FeatureStats
    from genbench.metrics.extractors import FeatureExtractor

    class Plain(FeatureExtractor):
        name = "plain-cnn"

        @classmethod
        def load(cls, data, cache_dir, device, **options):  # pragma: no cover
            raise NotImplementedError

    torch.manual_seed(0)
    x = torch.rand(600, 1, 8, 8)
    net = ClassifierNet(1, 10, 8).eval()
    on_cpu = stream_features(Plain(net, weights_sha256(net), 128, "none"), tensor_batches(x, 250), keep=True)
    gpu_ext = Plain(net.cuda(), weights_sha256(net), 128, "none")
    assert gpu_ext.features(x[:5], on_device=True).device.type == "cuda"
    on_gpu = stream_features(gpu_ext, tensor_batches(x, 250), keep=True)
    assert on_gpu.stats.mean.device.type == "cpu" and on_gpu.features.device.type == "cpu"
    # the accumulation: statistics streamed on the GPU equal those of the same features summed on the CPU (float64)
    on_host = FeatureStats.of(on_gpu.features)
    torch.testing.assert_close(on_gpu.stats.mean, on_host.mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(on_gpu.stats.cov, on_host.cov, rtol=1e-10, atol=1e-12)
    # the features themselves differ by the GPU's convolution arithmetic (cuDNN runs fp32 convolutions on TF32
    # tensor cores by default: ~1e-3 relative; seen on an H200, 2026-12-01: 2.7e-6 absolute on means of ~1e-3)
    torch.testing.assert_close(on_gpu.stats.mean, on_cpu.stats.mean, rtol=1e-2, atol=1e-4)
    torch.testing.assert_close(on_gpu.stats.cov, on_cpu.stats.cov, rtol=1e-2, atol=1e-4)
