"""A frozen, compiled copy of a network for a long inference loop (a sampler's thousands of network calls).

``torch.compile`` (TorchInductor) with weight freezing (Inductor's ``freezing`` option): the copy's parameters
become constants of the graph, so convolution weights are packed once for oneDNN and constant expressions are
folded, and element-wise chains (GroupNorm, SiLU, the residual additions) are fused into generated kernels.  It
is an inference-only optimisation: the weights are read once, at compile time, so the copy never sees a later
update of the original (it is a deep copy, used for one sampling session and dropped), and a call with gradients
enabled runs the eager copy.

The compile is a fixed cost of tens of seconds on a CPU (measured in ``bench/perf``, section "sampling"), paid at
the first call; it pays only over many calls, which is why ``genbench.runner.compiled_sampling`` decides from the
planned number of images through the network.  The graph is compiled for the first input shape seen; a call with another shape (a
smaller last batch) runs the eager copy instead of paying for a second compile.  Compiled results are not bit
for bit the eager ones: fused kernels round differently (in fp32 within rtol 1e-4 / atol 1e-5 of eager,
tests/nn/test_compiled.py).  If compiling fails (no C++ compiler, an unsupported
operator) the copy logs one warning and runs eagerly from then on; ``compiled`` says which happened.
"""
from __future__ import annotations

import copy
import logging
import time
from typing import Any

import torch
from torch import nn

log = logging.getLogger("genbench")


class FrozenCompiled(nn.Module):
    """``module`` (deep-copied, eval mode, no gradients) called through ``torch.compile(..., options={"freezing":
    True})`` for its first input shape, eagerly otherwise."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.eager = copy.deepcopy(module).eval().requires_grad_(False)
        # not a registered submodule (it wraps ``eager``: its parameters would appear twice)
        object.__setattr__(self, "_compiled", torch.compile(self.eager, options={"freezing": True}, dynamic=False))
        self._shapes: tuple[tuple[int, ...], ...] | None = None
        self.failed: str | None = None  # why compiling failed, if it did
        self.calls = 0  # calls that ran the compiled graph
        self._first_seconds: list[float] = []  # wall time of the first two compiled calls

    @property
    def compile_seconds(self) -> float | None:
        """The compile's wall time: the first compiled call's seconds less the second's (the first alone while
        there was no second; None before any)."""
        if not self._first_seconds:
            return None
        if len(self._first_seconds) == 1:
            return self._first_seconds[0]
        return max(0.0, self._first_seconds[0] - self._first_seconds[1])

    @property
    def compiled(self) -> bool:
        """Whether calls ran (or will run) the compiled graph: False after a failed compile."""
        return self.failed is None

    def forward(self, *args: Any) -> Any:
        shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        if self._shapes is None:
            self._shapes = shapes
        if self.failed is not None or shapes != self._shapes or torch.is_grad_enabled():
            return self.eager(*args)
        timed = len(self._first_seconds) < 2  # only the first two calls are timed (compile_seconds)
        cuda = [a.device for a in args if isinstance(a, torch.Tensor) and a.device.type == "cuda"] if timed else []
        try:
            if cuda:
                torch.cuda.synchronize(cuda[0])
            start = time.perf_counter()
            out = self._compiled(*args)
            if cuda:
                torch.cuda.synchronize(cuda[0])
            if timed:
                self._first_seconds.append(time.perf_counter() - start)
        except Exception as exc:  # compiling is an optimisation: never lose the run to it
            self.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("compiling the sampler's network failed (%s); sampling eagerly", self.failed)
            return self.eager(*args)
        self.calls += 1
        return out
