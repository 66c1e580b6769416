"""Progress a person can read anywhere: bars on a terminal, plain lines in a log file, the same lines in log.txt.

One :class:`Progress` per cell (the runner's), one :class:`GridProgress` per grid (the local executor's).  What
the terminal (standard error) gets depends on the mode (:func:`terminal_mode`):

* ``"bars"`` (standard error is a terminal): one tqdm bar per cell whose description names the phase, under an
  overall bar across the grid's cells; the ``[ok]`` lines are written above the bars (:func:`echo`).
* ``"lines"`` (standard error is a file or a pipe: ``genbench run ... > log 2>&1``): never a carriage return;
  one line per phase and a progress line every ``every`` seconds of a long phase, e.g.
  ``[ddpm digits s0] train step 500/2000 loss=0.21 2.4 step/s eta 5m``.
* ``"phases"`` (``--no-progress``): the phase lines only.
* ``"quiet"`` (``--quiet``, or a library ``Runner(progress=False)``): nothing.

Whatever the mode, every phase line and every periodic progress line (on the same ``every``-second clock) is
also logged at INFO to the ``genbench`` logger, which the runner records in the cell's ``log.txt``.  The clock
is injectable (``clock=``), so tests need not sleep.

Code deep inside a cell (the sampler loop) reports through :func:`current`, the cell's :class:`Progress` while
the runner has made it :meth:`Progress.active` (a do-nothing one otherwise).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TextIO

log = logging.getLogger("genbench")

Mode = Literal["bars", "lines", "phases", "quiet"]
MODES: tuple[str, ...] = ("bars", "lines", "phases", "quiet")
#: seconds between two periodic progress lines (``genbench run --progress-every``)
DEFAULT_EVERY = 15.0
#: a phase that lasted at least this many seconds gets a closing line with its duration
LONG_PHASE_SECONDS = 5.0
#: seconds between two refreshes of a bar's figures (loss, ...) on a terminal
BAR_POSTFIX_SECONDS = 0.5


def terminal_mode(quiet: bool = False, no_progress: bool = False, stream: TextIO | None = None) -> Mode:
    """The mode for the command line's flags: quiet, phases (--no-progress), else bars on a terminal, lines off it."""
    if quiet:
        return "quiet"
    if no_progress:
        return "phases"
    return "bars" if is_terminal(stream if stream is not None else sys.stderr) else "lines"


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal (a file, a pipe or a closed stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def resolve_mode(progress: bool | str) -> Mode:
    """``Runner(progress=...)``: a mode name, True (bars or lines, by standard error) or False (quiet)."""
    if progress is True:
        return terminal_mode()
    if progress is False or progress is None:
        return "quiet"
    if progress not in MODES:
        raise ValueError(f"progress must be one of {', '.join(MODES)} (or True/False), not {progress!r}")
    return progress  # type: ignore[return-value]


def duration(seconds: float) -> str:
    """``45s``, ``5m``, ``5m30s``, ``1h02m`` (whole seconds; minutes alone from ten minutes on)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(math.floor(seconds + 0.5))  # half up: 22.5 s is "23s", as people round
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m" if m >= 10 or s == 0 else f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _number(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:.4g}"


def echo(text: str, err: bool = True) -> None:
    """A line on standard error (or output) that never lands inside a bar: written above any open bars."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr if err else sys.stdout)


class Progress:
    """The progress of one cell: phases, then counts within a phase (``update``), then ``done``.

    ``label`` starts every line (``[ddpm digits s0]``); ``mode`` says what the terminal gets (module docstring);
    ``every`` is the period of the progress lines; ``stream`` the terminal side (default: standard error at
    the time of the first write); ``clock`` the time source (seconds, monotonic).
    """

    def __init__(self, label: str = "", mode: Mode = "quiet", every: float = DEFAULT_EVERY,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger | None = log) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not every > 0:
            raise ValueError(f"the progress interval must be positive, not {every!r} seconds")
        self.label, self.mode, self.every = label, mode, float(every)
        self._stream, self.clock, self.logger = stream, clock, logger
        self.name = ""
        self.total: float | None = None
        self.unit = ""
        self.n: float = 0.0
        self._n0 = 0.0
        self._t0 = self._next = self._next_postfix = 0.0
        self._bar: Any = None

    # ------------------------------------------------------------------ output
    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def _prefix(self) -> str:
        return f"[{self.label}] " if self.label else ""

    def _emit(self, text: str, terminal: bool) -> None:
        """``text`` to log.txt (the genbench logger) and, when ``terminal``, to the stream on its own line."""
        line = self._prefix() + text
        if self.logger is not None:
            self.logger.info("%s", line)
        if terminal:
            if self._bar is not None:
                self._bar.write(line, file=self.stream)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def line(self, text: str) -> None:
        """A line of its own (shown in every mode but quiet, and logged)."""
        self._emit(text, self.mode != "quiet")

    # ------------------------------------------------------------------ phases
    def phase(self, name: str, total: float | None = None, unit: str = "", start: float = 0.0) -> None:
        """A new phase (the previous one ends): announced on a line (a bar's description on a terminal);
        ``total`` and ``unit`` (``step``, ``images``; ``s`` for a time budget) make it countable from ``start``."""
        self._end_phase()
        self.name, self.total, self.unit = name, total, unit
        self.n = self._n0 = start
        now = self.clock()
        self._t0, self._next = now, now + self.every
        self._next_postfix = now
        self._emit(name + self._extent(), self.mode in ("lines", "phases"))
        if self.mode == "bars":
            self._bar_for_phase()

    def update(self, n: float, **metrics: Any) -> None:
        """The phase's count is now ``n`` (of ``total``); ``metrics`` (loss=..., formatted only when shown)
        appear on the progress line.  Cheap enough to call every step."""
        self.n = n
        if self._bar is not None:
            self._bar.update(n - self._bar.n)
            if metrics and self.clock() >= self._next_postfix:
                self._bar.set_postfix_str(" ".join(f"{k}={_number(v)}" for k, v in metrics.items()), refresh=False)
                self._next_postfix = self.clock() + BAR_POSTFIX_SECONDS
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every
            self._emit(self.progress_text(now, metrics), self.mode == "lines")

    def done(self, text: str | None = None) -> None:
        """End the cell's progress (closing its bar); ``text``: a last line (logged; shown unless quiet)."""
        self._end_phase()
        self._close_bar()
        self.name = ""
        if text:
            self.line(text)

    # ------------------------------------------------------------------ text
    def _extent(self) -> str:
        """`` (2000 steps, from 500)``, `` (4m30s budget)``: what a countable phase will count."""
        if not self.total:
            return ""
        if self.unit == "s":
            return f" ({duration(self.total)} budget" + (f", {duration(self.n)} done)" if self.n else ")")
        unit = self.unit if not self.unit or self.unit.endswith("s") else self.unit + "s"
        return f" ({_count(self.total)} {unit}" + (f", from {_count(self.n)})" if self.n else ")")

    def _position(self) -> str:
        if self.unit == "s":
            return f"{duration(self.n)}/{duration(self.total or 0)}"
        total = f"/{_count(self.total)}" if self.total else ""
        return f"{self.unit} {_count(self.n)}{total}".strip()

    def progress_text(self, now: float, metrics: dict[str, Any] | None = None) -> str:
        """``train step 500/2000 loss=0.21 2.4 step/s eta 5m``: the phase, the count, the metrics, the rate since
        the phase began and the time left at that rate."""
        parts = [self.name, self._position()]
        parts += [f"{k}={_number(v)}" for k, v in (metrics or {}).items()]
        elapsed = now - self._t0
        done = self.n - self._n0
        if self.unit == "s":
            left = (self.total or 0) - self.n
            parts.append(f"eta {duration(left)}")
        elif elapsed > 0 and done > 0:
            rate = done / elapsed
            parts.append(f"{rate:.3g} {self.unit or 'it'}/s")
            if self.total:
                parts.append(f"eta {duration((self.total - self.n) / rate)}")
        return " ".join(p for p in parts if p)

    def _end_phase(self) -> None:
        if self.name:
            took = self.clock() - self._t0
            if took >= LONG_PHASE_SECONDS:
                self._emit(f"{self.name} done ({duration(took) if took >= 60 else f'{took:.1f}s'})",
                           self.mode in ("lines", "phases"))

    # ------------------------------------------------------------------ bars
    def _bar_for_phase(self) -> None:
        from tqdm import tqdm

        desc = self._prefix() + self.name
        # a phase without a count shows its name and the time it has taken
        bar_format = None if self.total else "{desc} [{elapsed}]{postfix}"
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=desc, unit=self.unit or "it", leave=False, file=self.stream,
                             dynamic_ncols=True, bar_format=bar_format)
        else:
            self._bar.reset()
            self._bar.total = self.total
            self._bar.unit = self.unit or "it"
            self._bar.bar_format = bar_format
            self._bar.set_description_str(desc, refresh=False)
            self._bar.set_postfix_str("", refresh=False)
        if self.n:
            self._bar.update(self.n)
        self._bar.refresh()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ context
    @contextlib.contextmanager
    def active(self) -> Iterator[Progress]:
        """Make this the :func:`current` progress inside the block (the bar is closed when it ends)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)
            self._close_bar()


def _count(x: float | None) -> str:
    if x is None:
        return "?"
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


NULL = Progress("", "quiet")  # outside a cell: nothing on the terminal, the lines logged at INFO
_CURRENT: contextvars.ContextVar[Progress] = contextvars.ContextVar("genbench_progress", default=NULL)


def current() -> Progress:
    """The progress of the cell being run (outside a cell: a quiet one that only logs)."""
    return _CURRENT.get()


class _Muted(Progress):
    """Phases and counts go nowhere; free lines (a feature extractor being fitted) still reach ``outer``."""

    def __init__(self, outer: Progress) -> None:
        super().__init__(outer.label, "quiet", logger=None)
        self.outer = outer

    def phase(self, name: str, total: float | None = None, unit: str = "", start: float = 0.0) -> None:
        pass

    def update(self, n: float, **metrics: Any) -> None:
        pass

    def line(self, text: str) -> None:
        self.outer.line(text)


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """Inside the block :func:`current` reports no phases or counts (the samples scored during training must
    not replace the training bar); free lines still get through."""
    token = _CURRENT.set(_Muted(_CURRENT.get()))
    try:
        yield
    finally:
        _CURRENT.reset(token)


class _AboveBars(logging.Handler):
    """A terminal log handler that writes its records above any open bars (``tqdm.write``)."""

    def __init__(self, stream: Any, level: int, formatter: logging.Formatter | None) -> None:
        super().__init__(level)
        self.stream = stream
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001  (logging's own rule: a handler never raises)
            self.handleError(record)


@contextlib.contextmanager
def logs_above_bars(enabled: bool = True, logger: logging.Logger | None = None) -> Iterator[None]:
    """Inside the block, ``logger``'s (default: the root's) terminal handlers write above the bars, with their
    own level and format, so a warning is never glued to a bar (``enabled=False``: nothing changes)."""
    logger = logger or logging.getLogger()
    swapped = []
    for handler in list(logger.handlers) if enabled else []:
        stream = getattr(handler, "stream", None)
        if type(handler) is logging.StreamHandler and stream in (sys.stderr, sys.stdout):
            above = _AboveBars(stream, handler.level, handler.formatter)
            logger.removeHandler(handler)
            logger.addHandler(above)
            swapped.append((handler, above))
    try:
        yield
    finally:
        for handler, above in swapped:
            logger.removeHandler(above)
            logger.addHandler(handler)


class GridProgress:
    """The grid's progress: an overall bar across cells on a terminal, a ``[grid] cell 2/6: ...`` line per cell
    off it (and with ``--no-progress``), nothing when quiet."""

    def __init__(self, total: int, mode: Mode = "quiet", stream: TextIO | None = None) -> None:
        self.total, self.mode, self._stream = total, mode, stream
        self.index = 0
        self._bar: Any = None
        if mode == "bars" and total > 1:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="grid", unit="cell", leave=False, file=self.stream, dynamic_ncols=True)

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def start(self, what: str) -> None:
        """Cell ``index + 1`` of ``total`` begins (``what``: model, data set, seed)."""
        self.index += 1
        if self._bar is not None:
            self._bar.set_description_str(f"grid {self.index}/{self.total}", refresh=True)
        elif self.mode in ("lines", "phases") and self.total > 1:
            self.stream.write(f"[grid] cell {self.index}/{self.total}: {what}\n")
            self.stream.flush()

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
