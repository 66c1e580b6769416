"""Speed rows: peak memory is the peak of each sampler's own draw; draw-independent costs are measured once."""
from __future__ import annotations

import torch

from genbench.metrics.base import EvalContext, SampleSet
from genbench.metrics.speed import SamplingSpeed


class Zeros:
    def sample(self, n, *, steps=None, generator=None):
        return torch.zeros(n, 1, 8, 8)


def _ctx(samples, registry, tmp_path):
    return EvalContext(model=Zeros(), data=None, samples=samples, device=torch.device("cpu"), cache_dir=tmp_path,
                       seed=0, registry=registry)


def test_peak_memory_rows_come_from_each_draw(registry, tmp_path):
    levels = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    samples = [SampleSet("a", None, levels, 1, 0.5, 4, sampling_seed=0, peak_memory_mib=12.5),
               SampleSet("a", None, levels, 1, 0.5, 4, sampling_seed=1, peak_memory_mib=13.0),
               SampleSet("b", 5, levels, 5, 0.5, 4)]
    rows = SamplingSpeed().compute(_ctx(samples, registry, tmp_path))
    peaks = {(r.sampler, r.sampling_seed): r.value for r in rows if r.metric == "peak_memory"}
    assert peaks == {("a", 0): 12.5, ("a", 1): 13.0}  # none off CUDA
    assert sorted((r.sampler, r.sampling_seed) for r in rows if r.metric == "latency") == [("a", 0), ("b", 0)]
    assert sorted((r.sampler, r.sampling_seed) for r in rows if r.metric == "images_per_second") == [
        ("a", 0), ("a", 1), ("b", 0)]
