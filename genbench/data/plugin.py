"""The core's own data sets, registered through the same hook as plugins' data sets."""
from __future__ import annotations

from genbench.data.digits import Digits
from genbench.plugins import hookimpl


@hookimpl
def genbench_datasets() -> list[type]:
    return [Digits]
