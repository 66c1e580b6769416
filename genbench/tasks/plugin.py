"""The core's own tasks, registered through the ``genbench_tasks`` hook like a plugin's."""
from __future__ import annotations

from genbench.hookspecs import hookimpl
from genbench.tasks.builtin import builtin_tasks


@hookimpl
def genbench_tasks() -> list[type]:
    return builtin_tasks()
