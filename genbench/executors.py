"""Executors run a grid of cells: locally one after another (default), or on a Ray cluster.

A failing cell never sinks the others: each cell's errors are caught and recorded by
the runner, and the executor returns every result.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from genbench.runner import CellPlan, CellResult, CellSpec, Runner


def run_local(runner: Runner, cells: Iterable[CellSpec | CellPlan],
              on_result: Callable[[CellResult], Any] | None = None) -> list[CellResult]:
    """Run cells (specs, or plans the caller already made) one after another with ``runner``."""
    results = []
    for cell in cells:
        result = runner.run_cell(cell)
        if on_result:
            on_result(result)
        results.append(result)
    return results


def run_ray(
    runner_kwargs: dict[str, Any], cells: Iterable[CellSpec], address: str | None = None, num_cpus: int | None = None,
    on_result: Callable[[CellResult], Any] | None = None,
) -> list[CellResult]:
    """Run each cell as a Ray task (one CPU each, a GPU if the runner asks for CUDA).

    Each task builds its own registry from the entry points (plugins are found by name in the worker's
    process; modules registered by hand with ``build_registry(extra=...)`` do not travel) and logs INFO
    into the run's log.txt, as ``genbench run`` does.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray executor needs Ray: pip install 'genbench[ray]'") from None
    if not ray.is_initialized():
        # workers on other machines see genbench's environment settings (data roots, extractors, autoload)
        env = {k: v for k, v in os.environ.items() if k.startswith("GENBENCH_")}
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    gpus = 1 if str(runner_kwargs.get("device", "auto")).startswith("cuda") else 0

    @ray.remote(num_cpus=1, num_gpus=gpus)
    def run_one(kwargs: dict[str, Any], cell: CellSpec) -> CellResult:
        import logging

        from genbench.plugins import build_registry

        logging.getLogger("genbench").setLevel(logging.INFO)
        return Runner(**{**kwargs, "progress": False}, registry=build_registry()).run_cell(cell)

    pending = {run_one.remote(runner_kwargs, c): c for c in cells}
    results = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            pending.pop(ref)
            result = ray.get(ref)
            if on_result:
                on_result(result)
            results.append(result)
    return results
