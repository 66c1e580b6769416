"""The report: stored runs -> a self-contained HTML page and CSV / Markdown / LaTeX / JSON tables.

Rooms: ``inputs`` (reading runs' ``rows.json``, filters), ``rows`` (the rows as boards read
them), ``settings`` (which rows are comparable; tiny runs left out), ``derived`` (FID / floor,
KID - floor, FID test - train per run), ``columns`` (columns from the metrics' declared
displays), ``intervals`` (95% intervals: one run's standard error, or over seeds), ``marks``
(best only where intervals separate, else tied), ``validity`` (likelihoods below the data
entropy), ``memorisation`` (models at the FID floor whose samples sit near the training set),
``board`` (one leaderboard per data set), ``cells`` (what a board is made of), ``formatting``
(numbers, captions and the legend as text), ``markdown`` / ``latex`` / ``export`` (results.md,
.tex, .csv and .json), ``plots`` (figures), ``page`` / ``page_board`` / ``htmltext`` (the
escaped HTML) and ``build`` (``write_report``).
"""
from genbench.report.board import build_boards
from genbench.report.build import OUTPUTS, write_report
from genbench.report.formatting import MISSING, fmt_value
from genbench.report.intervals import ci95

__all__ = ["MISSING", "OUTPUTS", "build_boards", "ci95", "fmt_value", "write_report"]
