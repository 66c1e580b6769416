"""The report: stored runs -> a self-contained HTML page and CSV / Markdown / LaTeX / JSON tables.

``tables`` (leaderboards, mean ± 95% CI, reference rows, validity checks, Markdown/LaTeX),
``plots`` (matplotlib figures as PNG), ``inputs`` (reading and filtering runs), ``page``
(the escaped HTML) and ``build`` (``write_report``) each do one job.
"""
from genbench.report.build import OUTPUTS, write_report
from genbench.report.tables import MISSING, build_boards, ci95, fmt_value

__all__ = ["MISSING", "OUTPUTS", "build_boards", "ci95", "fmt_value", "write_report"]
