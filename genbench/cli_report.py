"""What ``genbench report RUN_DIRS... --out DIR`` reads: the given folders as one ``runs/`` folder for the report.

A RUN_DIR is what ``genbench run --out`` wrote (a folder with ``runs/`` inside), such a ``runs/`` folder, or one
run folder (with ``status.json``).  One results folder is read in place; several sources are gathered into a
temporary folder of links (``runs/<run id>`` -> the run folder), removed after the report is written.  A run id
found twice (the same cell in two folders) is read from the first folder that has it, with a warning.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("genbench")
DEFAULT_DIR = "reports"


class ReportSourceError(ValueError):
    """A RUN_DIR that holds no runs, or an --out that cannot be chosen; one line saying what to give."""


def _run_folders(source: Path) -> list[Path]:
    """The run folders a RUN_DIR stands for."""
    if (source / "status.json").is_file():
        return [source]
    runs = source / "runs" if (source / "runs").is_dir() else source
    found = sorted(p.parent for p in runs.glob("*/status.json"))
    if not found:
        what = "does not exist" if not source.exists() else "holds no runs (no runs/*/status.json, no status.json)"
        raise ReportSourceError(f"{source} {what}; give what `genbench run --out` wrote, its runs/ folder or a run "
                                f"folder")
    return found


def _is_results_folder(source: Path) -> bool:
    return (source / "runs").is_dir() and not (source / "status.json").is_file()


@contextlib.contextmanager
def staged_runs(sources: list[str], out: str | None) -> Iterator[tuple[Path, Path]]:
    """(a folder whose ``runs/`` holds every run of ``sources``, the folder the report goes to)."""
    paths = [Path(s) for s in sources]
    if len(set(paths)) != len(paths):
        raise ReportSourceError(f"a folder is given twice: {' '.join(sources)}")
    try:
        folders = {p: _run_folders(p) for p in paths}  # every source checked before anything is written
    except ReportSourceError as exc:
        if paths == [Path(DEFAULT_DIR)] and out is not None and (Path(out) / "runs").is_dir():
            raise ReportSourceError(f"{exc}. `genbench report` reads the folders given as arguments and writes where "
                                    f"--out says: did you mean `genbench report {out}`?") from None
        raise
    single = len(paths) == 1 and _is_results_folder(paths[0])
    if out is None:
        if not single:
            raise ReportSourceError("give --out DIR: where to write the report of "
                                    + ("several folders" if len(paths) > 1 else f"the run folder {paths[0]}"))
        out = str(paths[0])
    if single:
        yield paths[0], Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="genbench-report-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        for source, found in folders.items():
            for run_dir in found:
                link = runs / run_dir.name
                if link.exists():
                    log.warning("run %s is in %s and in %s; the report reads the first", run_dir.name,
                                os.readlink(link), run_dir)
                    continue
                link.symlink_to(run_dir.resolve(), target_is_directory=True)
        yield Path(tmp), Path(out)
