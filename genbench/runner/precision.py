"""Arithmetic precision and CPU threads of a cell: which dtype autocast uses, and how many intra-op threads.

``--precision fp32|bf16|fp16|auto`` (the ``precision`` config field) picks the dtype of the training step and
of the sampler's network calls:

- ``fp32``: no autocast (the config field's default: a family's preset may ask for ``auto`` only after
  ``bench/grids/precision_*_digits.toml`` and ``bench/precision.py`` showed that its quality holds in bf16 --
  which ones: README "Speed"; checked by ``tests/bench/test_precision.py``);
- ``bf16``: ``torch.autocast(dtype=torch.bfloat16)`` around ``model.train_step`` and ``model.sample`` --
  matrix products and convolutions in bfloat16 (8-bit mantissa, fp32's exponent range, so no loss scaling is
  needed, Kalamkar et al. 2019), reductions, norms and the optimiser's update in fp32 (weights stay fp32);
- ``fp16``: ``torch.autocast(dtype=torch.float16)`` the same way, with dynamic loss scaling (Micikevicius et
  al. 2018): fp16's 5-bit exponent underflows small gradients, so the loss is multiplied by a scale before the
  backward pass, the gradients divided by it before clipping and the update, and a step whose gradients
  overflow is skipped and the scale halved (``torch.amp.GradScaler``, one per optimiser; the models' shared
  ``genbench.nn.optim.optimiser_step`` reads it from the ``loss_scaling`` block the runner opens, so plugins
  need not know the precision).  CUDA only: on a CPU fp16 has no native arithmetic (bf16 has, where
  ``auto`` finds it), so ``--precision fp16`` on a CPU is refused at planning, before any work;
- ``auto``: bf16 where the hardware multiplies bf16 natively (a CPU with AVX512-BF16 or AMX, a CUDA device of
  compute capability 8.0 or later), else fp16 on a CUDA device, else fp32.

Likelihood evaluation (validation and test bits/dim, ``genbench.metrics.likelihood.nll_over``) always runs in
fp32: it is never inside the autocast block and ``fp32_block`` switches autocast off around it, so a
bits/dim is comparable between an fp32 and a bf16/fp16 run.  The precision actually used is recorded in every
row (``precision`` column), as are the number of intra-op threads (``threads``) and, on CUDA, the TF32 setting
(``tf32``: cuDNN's default runs fp32 convolutions on TF32 tensor cores; likelihoods switch it off); an fp16
run's curves also carry the loss scale and the number of skipped steps (``loss_scale``, ``skipped_steps``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import ContextManager

import torch

from genbench.nn.optim import LossScaling, loss_scaling

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16(flags: set[str] | None = None, capability: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively: an AVX512-BF16 or AMX-BF16 flag, or torch's CPU
    capability naming AMX/BF16 (``torch.backends.cpu.get_cpu_capability()``, e.g. "AVX512" or "AVX512_BF16").
    Without native support bf16 is emulated and slower than fp32."""
    flags = cpu_flags() if flags is None else flags
    if capability is None:
        try:
            capability = torch.backends.cpu.get_cpu_capability()
        except (AttributeError, RuntimeError):
            capability = ""
    cap = capability.upper()
    return any(f in flags for f in BF16_CPU_FLAGS) or "BF16" in cap or "AMX" in cap


def cuda_has_bf16(device: torch.device) -> bool:
    """Whether the CUDA device multiplies bf16 natively (compute capability 8.0 and later)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_precision(name: str | None, device: torch.device | str, *, cpu_bf16: bool | None = None,
                      cuda_bf16: bool | None = None) -> str:
    """"fp32", "bf16" or "fp16" for the requested ``name`` on ``device``.

    ``auto``: bf16 where native (CPU flags, CUDA capability >= 8.0), else fp16 on CUDA, else fp32.  ``fp16``
    on anything but a CUDA device is a ValueError (one line, before any work).  ``cpu_bf16`` / ``cuda_bf16``
    override the hardware detection (tests).  An unknown name is a ValueError naming the choices.
    """
    name = "fp32" if name is None else str(name).lower()
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    device = torch.device(device)
    if name == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 needs a CUDA device (fp16 with loss scaling), not {device.type}; "
                         "on a CPU use --precision bf16 or auto")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if (cuda_has_bf16(device) if cuda_bf16 is None else cuda_bf16) else "fp16"
    if device.type == "cpu":
        return "bf16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "fp32"
    return "fp32"


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """The block a training step or a sampler call runs in: autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision])


def loss_scaling_for(precision: str, device: torch.device | str, model: object) -> LossScaling | None:
    """The loss scaling an fp16 run's training steps use (a ``GradScaler`` per optimiser in
    ``model.optimizers``), or None for fp32 and bf16 (no scaling: the optimiser step is the plain one)."""
    if precision != "fp16":
        return None
    return LossScaling(device, getattr(model, "optimizers", None) or {})


@contextmanager
def training_block(precision: str, device: torch.device | str, scaling: LossScaling | None) -> Iterator[None]:
    """What ``model.train_step`` runs in: ``autocast`` and, for fp16, the ``loss_scaling`` that
    ``genbench.nn.optim.optimiser_step`` reads."""
    with autocast(precision, device), loss_scaling(scaling):
        yield


@contextmanager
def fp32_block(device: torch.device | str) -> Iterator[None]:
    """Autocast off inside the block (likelihood evaluation), whatever an enclosing block asked for; on CUDA
    also TF32 off for convolutions and matrix products (cuDNN runs fp32 convolutions on TF32 tensor cores by
    default, a 10-bit mantissa), restored afterwards, so that a bits/dim is computed in true fp32 everywhere."""
    device = torch.device(device)
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def tf32_mode(device: torch.device | str) -> str | None:
    """What the ``tf32`` column of a row records: on CUDA, which fp32 operations the training step and the
    sampler may run on TF32 tensor cores ("conv+matmul", "conv" -- PyTorch's default --, "matmul" or "off");
    None elsewhere (no TF32 on a CPU).  Likelihoods never do (``fp32_block``)."""
    if torch.device(device).type != "cuda":
        return None
    parts = [name for name, on in (("conv", torch.backends.cudnn.allow_tf32),
                                   ("matmul", torch.backends.cuda.matmul.allow_tf32)) if on]
    return "+".join(parts) or "off"


# ---------------------------------------------------------------------------------------------- threads
def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (quota / period), or None when unlimited or unknown.

    cgroup v2: ``<root>/cpu.max`` ("max 100000" or "150000 100000"); v1: ``<root>/cpu/cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us`` (quota -1: unlimited)."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cores(root: str | Path = "/sys/fs/cgroup") -> int:
    """The cores this process may use: the CPUs of its affinity mask, capped by the cgroup's quota (rounded
    up; at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit - 1e-9)))
    return max(1, cores)


def resolve_threads(requested: int | str | None = None, environ: dict[str, str] | None = None,
                    root: str | Path = "/sys/fs/cgroup") -> int:
    """Intra-op threads for a cell: ``requested`` (an int, or None/"auto"), else ``OMP_NUM_THREADS`` when the
    user set it, else the available cores (``available_cores``)."""
    if requested not in (None, "auto"):
        n = int(requested)
        if n < 1:
            raise ValueError(f"threads must be a positive number or auto, got {requested!r}")
        return n
    env = os.environ if environ is None else environ
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    return available_cores(root)


@contextmanager
def intra_op_threads(n: int) -> Iterator[int]:
    """``torch.set_num_threads(n)`` inside the block, the previous count put back after."""
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(saved)


# ---------------------------------------------------------------------------------------------- compile
def compile_networks(model: object) -> list[str]:
    """``nn.Module.compile()`` (in place: state-dict keys unchanged, so checkpoints stay loadable) on every
    trained and weight-averaged network of the model; returns their names.  Compilation itself happens at
    the first call, inside the training step / sampler."""
    names = []
    for group in ("networks", "averaged"):
        for name, net in (getattr(model, group, None) or {}).items():
            if isinstance(net, torch.nn.Module):
                net.compile()
                names.append(f"{group}.{name}")
    return names
