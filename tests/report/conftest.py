"""Fixtures for the report tests (helpers in report_fakes.py, importable from the test modules)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_fakes import HOSTILE, make_runs, write_failed  # noqa: E402


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: Any) -> Path:
    """Five model families plus the baseline, three seeds, one failed cell, a hostile model name."""
    root = tmp_path_factory.mktemp("report-runs")
    make_runs(root, extra={HOSTILE: ({'<img src=x onerror=alert(2)>': (11.0, 500.0, 1)}, {"ELBO": 1.9})})
    write_failed(root, HOSTILE, f"ValueError: bad value {HOSTILE}", seed=3)
    return root


@pytest.fixture(scope="session")
def registry() -> Any:
    """The core plugins only (data sets, metrics): no model plugin is imported."""
    from genbench import plugins

    return plugins.build_registry(autoload=False)


@pytest.fixture(autouse=True)
def core_only_registry(registry: Any) -> Any:
    """The process-wide registry the CLI looks up (``genbench report`` in the CLI tests) is the core-only one."""
    from genbench import plugins

    with plugins.using_registry(registry):
        yield


@pytest.fixture(scope="session")
def displays(registry: Any) -> Any:
    """How the core's metrics and the runner's own rows are displayed."""
    from genbench.metrics.display import registry_displays

    return registry_displays(registry)


@pytest.fixture(scope="session")
def demo_report(demo_runs: Path, tmp_path_factory: Any, registry: Any) -> Path:
    """index.html and the tables written from ``demo_runs``."""
    from genbench.report import write_report

    out = tmp_path_factory.mktemp("report-out")
    return write_report(demo_runs, out, registry=registry)
