"""Executors run a grid of cells: locally one after another (default), or on a Ray cluster.

A failing cell never sinks the others: each cell's errors are caught and recorded by
the runner, and the executor returns every result.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from genbench.progress import GridProgress
from genbench.runner import CellPlan, CellResult, CellSpec, Runner


def run_local(runner: Runner, cells: Iterable[CellSpec | CellPlan],
              on_result: Callable[[CellResult], Any] | None = None) -> list[CellResult]:
    """Run cells (specs, or plans the caller already made) one after another with ``runner``; the grid's
    progress (an overall bar on a terminal, a line per cell off it) follows ``runner.progress``."""
    cells = list(cells)
    grid = GridProgress(len(cells), runner.progress)
    results = []
    try:
        for cell in cells:
            spec = cell.spec if isinstance(cell, CellPlan) else cell
            grid.start(f"{spec.model} on {spec.dataset} seed {spec.seed}")
            result = runner.run_cell(cell)
            grid.advance()
            if on_result:
                on_result(result)
            results.append(result)
    finally:
        grid.close()
    return results


TASK_RETRIES = 3  # a cell whose node (or worker process) dies is run again on another node, from its checkpoint
RETRY_LOCK_WAIT = 120.0  # seconds a retried cell waits for the killed attempt's lock to be released


def run_ray(
    runner_kwargs: dict[str, Any], cells: Iterable[CellSpec], address: str | None = None, num_cpus: int | None = None,
    on_result: Callable[[CellResult], Any] | None = None, max_retries: int = TASK_RETRIES,
) -> list[CellResult]:
    """Run each cell as a Ray task (one CPU each, a GPU if the runner asks for CUDA).

    Each task builds its own registry from the entry points (plugins are found by name in the worker's
    process; modules registered by hand with ``build_registry(extra=...)`` do not travel) and logs INFO
    into the run's log.txt, as ``genbench run`` does.  ``runner_kwargs`` must name an ``out_dir`` every node
    sees (a shared file system): a task whose node dies is retried (``max_retries``) on another node and
    resumes from the cell's last checkpoint there; the run folder's lock keeps a late attempt from writing
    beside it.  A task that still fails is recorded as a failed cell with a one-line error.
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

    @ray.remote(num_cpus=1, num_gpus=gpus, max_retries=max_retries)
    def run_one(kwargs: dict[str, Any], cell: CellSpec) -> CellResult:
        import logging

        from genbench.plugins import build_registry

        logging.getLogger("genbench").setLevel(logging.INFO)
        node = {"ray_node": ray.get_runtime_context().get_node_id()}
        # no terminal to draw on: the phase and progress lines go to the cell's log.txt only
        kwargs = {"lock_wait": RETRY_LOCK_WAIT, **kwargs, "progress": "quiet", "status_extra": node}
        return Runner(**kwargs, registry=build_registry()).run_cell(cell)

    pending = {run_one.remote(runner_kwargs, c): c for c in cells}
    results = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            cell = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # the task's retries are spent (nodes lost) or Ray itself failed
                text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
                result = CellResult(cell, "failed", None, error=f"Ray task failed after {max_retries} retries: {text}")
            if on_result:
                on_result(result)
            results.append(result)
    return results
