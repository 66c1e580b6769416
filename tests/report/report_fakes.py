"""Run folders written by hand in the runner's own format, for the report tests.

The rows go through ``genbench.results.measurement_row`` (the runner's function), so the
report reads exactly the columns a real run writes; no training happens here.  The per-pixel
baseline ("independent") writes ``role = "baseline"``, as its model class declares.
"""
from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genbench.metrics.base import Measurement
from genbench.results import measurement_row, rows_frame

HOSTILE = "<script>alert(1)</script>"
BASELINE = "independent"
SPLIT = "digits-v1:seed20240611:train1197/val300/test300"
SHA = "719a2ad74fd0344a58905126fd622cfa5a748e3080514e679c5bbf29d5282378"

# model -> (samplers: {label: (fid, images/s, nfe)}, likelihood: {kind: bits/dim} )
MODELS: dict[str, tuple[dict[str, tuple[float, float, int]], dict[str, float]]] = {
    "ddpm": ({"ancestral-1000": (3.1, 4.0, 1000), "DDIM-50": (4.2, 80.0, 50), "DDIM-20": (6.9, 200.0, 20)}, {"VLB": 1.62}),
    "vae": ({"default": (14.0, 9000.0, 1)}, {"ELBO": 1.71, "IWAE-100": 1.66}),
    "gan": ({"default": (5.5, 12000.0, 1)}, {}),
    "pixelcnn": ({"default": (8.3, 30.0, 64)}, {"exact": 1.55}),
    "independent": ({"default": (28.7, 400000.0, 1)}, {"exact": 2.43}),
}


def _png_grid(levels: torch.Tensor, k: int) -> bytes:
    import torchvision.utils as vutils

    grid = vutils.make_grid(levels.float() / (k - 1), nrow=10, padding=1, pad_value=1.0)
    buf = io.BytesIO()
    vutils.save_image(grid, buf, format="png")
    return buf.getvalue()


def write_run(root: Path, model: str, seed: int, samplers: dict[str, tuple[float, float, int]], likelihood: dict[str, float],
              dataset: str = "digits", entropy: float | None = None, stderr: float = 0.004, extractor: str = "classifier",
              run_id: str | None = None, role: str | None = None, preset: str = "quick", n: int = 1000,
              sample_stderr: float | None = None, extra: list[Measurement] | None = None, jitter_rel: float = 0.05) -> Path:
    """A finished cell's folder: status.json, config.json, rows.csv/json, curves.csv, samples/*.png.

    ``n``: the sample size of the sample-metric rows; ``sample_stderr``: a standard error relative to the value
    on the FID and confident-share rows and the floor (as the bootstrap writes; None: no standard error);
    ``extra``: more measurements (memorisation rows...) written with the run's provenance; ``jitter_rel``: the
    relative spread of the fake values over seeds."""
    rng = np.random.default_rng(zlib.crc32(f"{model}/{seed}".encode()))  # the same fakes in every process
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    run_id = run_id or f"{safe}-{dataset}-s{seed}-{zlib.crc32(f'{model}/{seed}/{dataset}'.encode()):010d}"
    run = root / "runs" / run_id
    (run / "samples").mkdir(parents=True, exist_ok=True)
    jitter = lambda v, rel=jitter_rel: float(v * (1 + rel * rng.standard_normal()))  # noqa: E731
    se = lambda v: None if sample_stderr is None else abs(v) * sample_stderr  # noqa: E731
    ms: list[Measurement] = []
    for label, (fid, ips, nfe) in samplers.items():
        fid_v, share = jitter(fid), min(1.0, jitter(0.9 - fid / 40))
        ms += [
            Measurement("fid", fid_v, "", False, n=n, stderr=se(fid_v), sampler=label, extractor=extractor,
                        extractor_sha256=SHA, reference=f"test ({SPLIT})", details={"extractor_test_accuracy": 0.973}),
            Measurement("confident_share", share, "fraction", True, n=n, stderr=se(share), sampler=label,
                        extractor=extractor, extractor_sha256=SHA),
            Measurement("images_per_second", jitter(ips), "images/s", True, n=n, sampler=label),
            Measurement("nfe", float(nfe), "evaluations/image", False, sampler=label),
            Measurement("latency", jitter(nfe * 2e-3), "s/image", False, n=1, sampler=label),
            Measurement("flops_per_image", float(nfe) * 2.5e7, "FLOP", False, n=1, sampler=label),
        ]
        levels = torch.from_numpy(rng.integers(0, 17, size=(100, 1, 8, 8)))
        (run / "samples" / f"{label}.png").write_bytes(_png_grid(levels, 17))
    floor = jitter(0.97, 0.02)
    ms.append(Measurement("fid_floor", floor, "", False, n=n, stderr=se(floor), sampler="real data", extractor=extractor,
                          extractor_sha256=SHA, details={"extractor_test_accuracy": 0.973}))
    for kind, bpd in likelihood.items():
        ms.append(Measurement("bits_per_dim", jitter(bpd, 0.01 if jitter_rel else 0.0), "bits/dim", False, kind=kind, n=300, stderr=stderr,
                              reference=f"test ({SPLIT})"))
    if likelihood:
        first = next(iter(likelihood.items()))
        ms.append(Measurement("val_bits_per_dim", jitter(first[1], 0.01), "bits/dim", False, kind=first[0], n=300))
    if entropy is not None:
        ms.append(Measurement("data_entropy", entropy, "bits/dim", None, kind="exact", reference=SPLIT))
    ms += list(extra or [])
    ms += [
        Measurement("train_seconds", jitter(120.0), "s", False),
        Measurement("train_steps", 2000.0, "steps", None),
        Measurement("parameters", 1.2e6 if model != "independent" else 0.0, "parameters", None),
    ]
    config = {"batch_size": 64, "max_steps": 2000, "n_samples": 1000, "sample_steps": [None]}
    ident = {"model": model, "dataset": dataset, "split": SPLIT, "data_hash": "ab" * 32, "seed": seed, "preset": preset,
             "config": config, "device": "cpu"}
    versions = {"genbench": "0.1.0", "torch": "2.14.1", "python": "3.11.7", "plugin": "genbench 0.1.0"}
    role = role or ("baseline" if model == BASELINE else "model")
    cell = {"run_id": run_id, "model": model, "role": role, "dataset": dataset, "seed": seed, "preset": preset, "split": SPLIT,
            "config_hash": "cd" * 32, "device": "cpu", "timestamp": "2026-11-28T10:00:00+00:00", "versions": versions}
    rows = [measurement_row(m, cell) for m in ms]
    (run / "rows.json").write_text(json.dumps(rows))
    (run / "rows.csv").write_text(rows_frame(rows).to_csv(index=False))
    (run / "config.json").write_text(json.dumps({"identity": ident, "config_hash": "cd" * 32, "versions": versions}))
    steps = np.arange(10, 2001, 10)
    curves = pd.DataFrame({"step": steps, "seconds": steps * 0.06, "loss": 2.0 * np.exp(-steps / 500) + 0.3 + 0.02 * rng.standard_normal(len(steps))})
    if likelihood:
        curves.loc[::20, "val_bits_per_dim"] = 1.5 + np.exp(-curves["step"][::20] / 700)
    curves.to_csv(run / "curves.csv", index=False)
    (run / "status.json").write_text(json.dumps({"run_id": run_id, "model": model, "dataset": dataset, "seed": seed,
                                                 "preset": preset, "config_hash": "cd" * 32, "state": "done"}))
    return run


def write_failed(root: Path, model: str, error: str, dataset: str = "digits", seed: int = 0) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    run_id = f"{safe}-{dataset}-s{seed}-failed0000"
    run = root / "runs" / run_id
    run.mkdir(parents=True, exist_ok=True)
    (run / "status.json").write_text(json.dumps({"run_id": run_id, "model": model, "dataset": dataset, "seed": seed,
                                                 "preset": "quick", "config_hash": "ef" * 32, "state": "failed", "error": error}))
    return run


def make_runs(root: Path, seeds: tuple[int, ...] = (0, 1, 2), entropy: float | None = None,
              extra: dict[str, tuple[dict, dict]] | None = None) -> Path:
    for model, (samplers, lik) in {**MODELS, **(extra or {})}.items():
        for seed in seeds:
            write_run(root, model, seed, samplers, lik, entropy=entropy)
    write_failed(root, "ddpm", "DivergenceError: ddpm diverged at step 312: {'loss': nan}", seed=7)
    return root
