"""One writer per run folder: an exclusive ``flock`` on ``<run folder>/lock``.

The lock is held on an open file descriptor, so the operating system releases it when the owner exits in any
way (return, exception, SIGKILL, a lost node's processes being killed): a lock is never stale.  The file records
the owner's pid and host only so that a second writer can say who holds it.  ``flock`` locks are per open file
description, so two ``RunLock`` objects in one process exclude each other too.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = "lock"


class RunFolderBusy(RuntimeError):
    """Another process is writing this run folder; the message is one line saying who and what to do."""


class RunLock:
    """``with RunLock(run_dir, wait=seconds):`` holds the run folder's lock, waiting up to ``wait`` seconds
    (polling) for another writer to finish, else raising ``RunFolderBusy``."""

    def __init__(self, run_dir: str | Path, wait: float = 0.0, poll: float = 0.2) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.wait, self.poll = wait, poll
        self._fd: int | None = None

    def owner(self) -> str:
        """Who holds the lock, as recorded in the lock file ("pid N on HOST"), or "another process"."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunFolderBusy(f"run folder {self.run_dir} is being written by {self.owner()}; "
                                        "wait for it to finish or use another --out") from None
                time.sleep(self.poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
