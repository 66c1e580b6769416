"""One writer per run folder: a second process is refused (or waits) with a line naming the writer; the lock
dies with its owner, even by SIGKILL; cells of other run folders go on meanwhile."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genbench.locks import RunFolderBusy, RunLock
from genbench.runner import CellSpec, Runner

TINY = {"max_steps": 4, "n_samples": 20, "sample_batch_size": 20, "eval_every": 4}
# genbench.locks imports nothing of genbench (nor torch): load it alone, so the holder starts in a blink
HOLD = ("import importlib.util as u, sys, time; s = u.spec_from_file_location('locks', sys.argv[3]); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); m.RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(float(sys.argv[2]))")


def hold(run_dir, seconds: float) -> subprocess.Popen:
    """Another process holding the run folder's lock for ``seconds``."""
    import genbench.locks

    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), str(seconds), genbench.locks.__file__],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def runner(tmp_path, registry, cache_dir):
    return Runner(tmp_path / "out", registry=registry, device="cpu", progress=False, cache_dir=cache_dir,
                  extractors=["random-cnn"])


def test_a_second_writer_is_refused_naming_the_first_and_the_lock_dies_with_it(runner):
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    run_dir = runner.out_dir / "runs" / runner.plan(spec).run_id
    other = runner.plan(CellSpec("independent", "digits", 1, "quick", TINY))
    holder = hold(run_dir, 60)
    try:
        with pytest.raises(RunFolderBusy, match=f"being written by pid {holder.pid} on "):
            RunLock(run_dir).acquire()
        refused = runner.run_cell(spec)
        assert refused.state == "failed" and "\n" not in refused.error
        assert refused.error.startswith(f"run folder {run_dir} is being written by pid {holder.pid}")
        assert "wait for it to finish or use another --out" in refused.error
        assert not (run_dir / "status.json").exists() and not (run_dir / "log.txt").exists()  # nothing written
        assert runner.run_cell(other).state == "done"  # another run folder meanwhile
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(run_dir):  # released by the kernel with the killed process: never stale
        assert json.loads((run_dir / "lock").read_text())["pid"] == os.getpid()


def test_a_waiting_writer_takes_over_when_the_first_finishes(runner):
    spec = CellSpec("independent", "digits", 0, "quick", TINY)
    run_dir = runner.out_dir / "runs" / runner.plan(spec).run_id
    holder = hold(run_dir, 1.0)
    t0 = time.monotonic()
    waiting = Runner(runner.out_dir, registry=runner.registry, device="cpu", progress=False,
                     cache_dir=runner.cache_dir, extractors=["random-cnn"], lock_wait=30)
    assert waiting.run_cell(spec).state == "done"
    assert time.monotonic() - t0 > 0.5 and holder.wait() == 0


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "run", wait=0.3, poll=0.1).acquire()
        with RunLock(tmp_path / "other"):  # other run folders are free
            pass
