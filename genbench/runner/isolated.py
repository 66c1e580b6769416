"""A cell in a child process with a deadline (``Runner(cell_timeout=...)``, ``genbench run --cell-timeout``).

A plugin that hangs (in Python or in native code) cannot be stopped from inside its own process, so the cell
runs in a child process that rebuilds the runner and the registry from importable plugin modules, runs the cell
and sends its ``CellResult`` back.  Children come from a ``forkserver`` (started once, with genbench, torch and
torchvision imported, before any OpenMP thread pool exists): not ``fork`` from the caller, since a forked child
of a process whose OpenMP pool has run hangs on its first parallel kernel, and not ``spawn``, which imports
everything again for every cell.  The time counts from the moment the child is ready (its imports done);
starting up may take ``STARTUP_SECONDS`` more (a plugin that hangs on import is stopped too).  When the time is
up the child is killed (SIGKILL: its run folder lock is released with it), the cell's status becomes "failed"
with a one-line error and the grid goes on.  A child watches the process that asked for it and kills itself when
that one is gone (its own parent is the forkserver, which stays up while any child lives), so killing
``genbench run`` leaves no orphan writing a run folder.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.io import atomic_write_json
from genbench.locks import RunFolderBusy, RunLock

if TYPE_CHECKING:
    from genbench.plugins import Registry
    from genbench.runner.cells import CellPlan, CellResult, CellSpec, Runner

log = logging.getLogger("genbench")
READY = "ready"
STARTUP_SECONDS = 120.0


def registry_recipe(registry: Registry) -> tuple[bool, list[str]]:
    """(load entry points?, names of the modules registered by hand) from which a child rebuilds ``registry``."""
    autoload, extra = False, []
    for key, module in registry.pm.list_name_plugin():
        if key.startswith("genbench-core:"):
            continue
        name = getattr(module, "__name__", "")
        if not key.startswith("extra:"):
            autoload = True
            continue
        spec = getattr(module, "__spec__", None)
        if spec is None or sys.modules.get(name) is not module:
            raise ValueError(f"--cell-timeout runs cells in a child process, which cannot import the plugin "
                             f"module {name!r} registered in this process; install it as a plugin distribution")
        extra.append(name)
    return autoload, extra


def _die_with(pid: int) -> None:
    """Kill this process (SIGKILL: no cleanup that could write) as soon as process ``pid`` exits."""

    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)  # Linux 5.3+: readable once the process has exited
            select.select([fd], [], [])
        except (AttributeError, OSError):  # elsewhere: poll
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="genbench-parent-watch", daemon=True).start()


def _child(options: dict[str, Any], recipe: tuple[bool, list[str]], spec: CellSpec, conn: Any, parent: int) -> None:
    _die_with(parent)
    logging.getLogger("genbench").setLevel(logging.INFO)
    from genbench.plugins import build_registry
    from genbench.runner.cells import Runner

    autoload, extra = recipe
    registry = build_registry(extra=[importlib.import_module(n) for n in extra], autoload=autoload)
    runner = Runner(**options, registry=registry)
    import torchvision.utils  # noqa: F401  (the PNG grids' import, a second or more: start-up, not the cell's time)

    conn.send(READY)
    result = runner.run_cell(spec)
    conn.send(result)
    conn.close()


def _record_timeout(runner: Runner, plan: CellPlan, run_dir: Path, error: str) -> None:
    """Status "failed" and a line in log.txt, once the killed child's lock is released."""
    try:
        with RunLock(run_dir, wait=5.0):
            atomic_write_json(run_dir / "status.json", {
                "run_id": plan.run_id, "model": plan.spec.model, "dataset": plan.spec.dataset, "seed": plan.spec.seed,
                "preset": plan.spec.preset, "config_hash": plan.config_hash, "state": "failed", "error": error})
            with open(run_dir / "log.txt", "a") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR cell {plan.run_id} failed: {error}\n")
    except (RunFolderBusy, OSError) as exc:
        log.warning("could not record the timeout of %s: %s", plan.run_id, exc)


def run_isolated(runner: Runner, plan: CellPlan, run_dir: Path, start: float) -> CellResult:
    """Run ``plan`` in a child process; kill it after ``runner.cell_timeout`` seconds."""
    from genbench.runner.cells import CellResult

    spec = plan.spec
    try:
        recipe = registry_recipe(runner.registry)
    except ValueError as exc:
        return CellResult(spec, "failed", None, error=str(exc), seconds=time.perf_counter() - start)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["genbench.runner", "genbench.plugins", "torchvision.utils"])
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(runner.options, recipe, spec, send, os.getpid()), daemon=True)
    child.start()
    send.close()
    timeout = float(runner.cell_timeout or 0)
    deadline = start + timeout + STARTUP_SECONDS
    result, closed = None, False

    def take() -> None:
        nonlocal result, deadline, closed
        try:
            message = receive.recv()
        except EOFError:  # the child exited without a word
            closed = True
            return
        if message == READY:
            deadline = time.perf_counter() + timeout
        else:
            result = message

    while result is None and not closed and child.is_alive() and time.perf_counter() < deadline:
        if receive.poll(min(0.5, max(0.0, deadline - time.perf_counter()))):
            take()
    while result is None and not closed and receive.poll(0):  # sent just before exiting
        take()
    if closed:
        child.join(5)
    if result is not None:
        child.join(10)
        result.seconds = time.perf_counter() - start
        return result
    if child.is_alive():
        child.kill()
        child.join()
        error = f"stopped after {runner.cell_timeout:g} s (--cell-timeout); the model hangs or needs more time"
    else:
        error = f"the cell's process died (exit code {child.exitcode}); see {run_dir / 'log.txt'}"
    _record_timeout(runner, plan, run_dir, error)
    return CellResult(spec, "failed", run_dir, error=error, seconds=time.perf_counter() - start)
