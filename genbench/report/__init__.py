"""The report: stored runs -> a self-contained HTML page and CSV / Markdown / LaTeX / JSON tables.

Rooms: ``inputs`` (reading runs' ``rows.json``, filters), ``rows`` (the rows as boards read
them), ``columns`` (columns from the metrics' declared displays), ``intervals`` (mean ± 95%
Student-t interval over runs), ``marks`` (best values), ``validity`` (likelihoods below the
data entropy), ``board`` (one leaderboard per data set), ``cells`` (what a board is made
of), ``formatting`` (numbers and cells as text), ``markdown`` / ``latex`` / ``export``
(results.md, .tex, .csv and .json), ``plots`` (figures), ``page`` (the escaped HTML) and
``build`` (``write_report``).
"""
from genbench.report.board import build_boards
from genbench.report.build import OUTPUTS, write_report
from genbench.report.formatting import MISSING, fmt_value
from genbench.report.intervals import ci95

__all__ = ["MISSING", "OUTPUTS", "build_boards", "ci95", "fmt_value", "write_report"]
