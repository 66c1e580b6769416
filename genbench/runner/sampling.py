"""Drawing a cell's samples: per sampler setting and sampling seed, timed, quantised once, saved as .npz + PNG."""
from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import numpy as np
import torch

from genbench.data.base import DataSplits
from genbench.io import atomic_write_bytes
from genbench.metrics.base import SampleSet
from genbench.model import DataSpec, GenerativeModel, ModelConfig
from genbench.naming import safe_name
from genbench.progress import current as current_progress
from genbench.runner.compiled_sampling import compiles_sampler, planned_sampler_calls
from genbench.runner.precision import autocast
from genbench.runner.training import DivergenceError

log = logging.getLogger("genbench")


def generator_seed(seed: int, setting: int, sampling_seed: int = 0) -> int:
    """The seed of the generator that draws sampler setting ``setting`` (its index in ``sample_steps``).

    Sampling seed 0 is ``seed * 7919 + 17 * setting + 1``, what a run with one sampling seed has always
    used; further sampling seeds get independent streams from ``numpy.random.SeedSequence``.
    """
    if sampling_seed == 0:
        return seed * 7919 + 17 * setting + 1
    return int(np.random.SeedSequence([seed, setting, sampling_seed]).generate_state(1)[0])


def save_grid(levels: torch.Tensor, path: Path, spec: DataSpec) -> None:
    """A 10-wide PNG grid of integer-level images, shown as k/(K-1)."""
    import torchvision.utils as vutils

    grid = vutils.make_grid(spec.to_unit(levels), nrow=10, padding=1, pad_value=1.0)
    png = io.BytesIO()
    vutils.save_image(grid, png, format="png")
    atomic_write_bytes(path, png.getvalue())


def draw(model: GenerativeModel, data: DataSplits, config: ModelConfig, steps: int | None, generator: torch.Generator,
         device: torch.device, label: str) -> tuple[torch.Tensor, float, float | None]:
    """``config.n_samples`` images from one sampler setting in batches: (levels, seconds, CUDA peak MiB or None)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    chunks, seconds = [], 0.0
    remaining = config.n_samples
    while remaining > 0:
        b = min(config.sample_batch_size, remaining)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast(getattr(config, "precision", "fp32"), device):
            x = model.sample(b, steps=steps, generator=generator).float()  # bf16 runs: the net calls in bf16
        if cuda:
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        if tuple(x.shape) != (b, *data.spec.shape):
            raise ValueError(f"{model.name}.sample({b}) returned shape {tuple(x.shape)}, expected {(b, *data.spec.shape)}")
        if not torch.isfinite(x).all():
            raise DivergenceError(f"{model.name} produced non-finite samples with sampler {label}")
        chunks.append(data.spec.quantise(x.detach().cpu()))
        remaining -= b
        current_progress().update(config.n_samples - remaining)  # the cell's progress (genbench.progress)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return torch.cat(chunks), seconds, peak


def draw_samples(model: GenerativeModel, data: DataSplits, config: ModelConfig, seed: int, device: torch.device,
                 run_dir: Path | None = None, sampling_seeds: int | None = None) -> list[SampleSet]:
    """``n_samples`` per sampler setting and sampling seed (``config.sampling_seeds`` unless given).

    With ``run_dir``, each draw is saved as ``samples/<sampler>.npz`` (sampling seed j > 0:
    ``samples/<sampler>-seed<j>.npz``) and draw 0 of each setting also as a PNG grid.
    """
    model.train(False)
    if compiles_sampler(model, config, sampling_seeds):  # genbench.runner.compiled_sampling: the compile pays here
        with model.compiled_sampling() as frozen:
            log.info("sampler network compiled for %d planned calls",
                     planned_sampler_calls(model, config, sampling_seeds))
            out = _draw_settings(model, data, config, seed, device, run_dir, sampling_seeds, compiled=True)
        compile_s = frozen.compile_seconds if frozen.compiled else None
        if out and compile_s is not None:  # paid inside the first draw: a cost of its own, not of that sampler
            out[0].seconds = max(out[0].seconds - compile_s, 1e-9)
        for s in out:  # a failed compile drew eagerly: the rows say so
            s.compiled, s.compile_seconds = frozen.compiled, compile_s
        return out
    return _draw_settings(model, data, config, seed, device, run_dir, sampling_seeds)


def _draw_settings(model: GenerativeModel, data: DataSplits, config: ModelConfig, seed: int, device: torch.device,
                   run_dir: Path | None, sampling_seeds: int | None, compiled: bool = False) -> list[SampleSet]:
    out = []
    for i, steps in enumerate(config.sample_steps):
        label = model.sampler_name(steps)
        nfe = model.nfe(steps)
        for j in range(config.sampling_seeds if sampling_seeds is None else sampling_seeds):
            gen = torch.Generator().manual_seed(generator_seed(seed, i, j))
            current_progress().phase(f"sampling {label}" + (f" (sampling seed {j})" if j else ""),
                                     total=config.n_samples, unit="images")
            levels, seconds, peak = draw(model, data, config, steps, gen, device, label)
            if run_dir is not None:
                stem = safe_name(label) if j == 0 else safe_name(f"{label}-seed{j}")
                buf = io.BytesIO()
                np.savez_compressed(buf, samples=levels.numpy(), levels=data.spec.levels)
                atomic_write_bytes(run_dir / "samples" / f"{stem}.npz", buf.getvalue())
                if j == 0:
                    save_grid(levels[:100], run_dir / "samples" / f"{stem}.png", data.spec)
                log.info("sampler %s (sampling seed %d): %d images in %.2fs, NFE %d", label, j, len(levels), seconds, nfe)
            out.append(SampleSet(label=label, steps=steps, levels=levels, nfe=nfe, seconds=seconds,
                                 batch_size=min(config.sample_batch_size, config.n_samples), sampling_seed=j,
                                 peak_memory_mib=peak, compiled=compiled))
    return out
