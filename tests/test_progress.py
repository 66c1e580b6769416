"""Progress a person can read anywhere: bars on a terminal, plain lines (never a carriage return) off it, the same
lines in log.txt, --no-progress (phase lines only) and --quiet (errors and the final line only)."""
from __future__ import annotations

import io
import logging
import re

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.progress import (NULL, GridProgress, Progress, current, duration, logs_above_bars, muted, resolve_mode,
                               terminal_mode)


class Terminal(io.StringIO):
    """A stream that says it is a terminal (what a tty's ``isatty()`` says)."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A fake monotonic clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def training(progress: Progress, clock: Clock, steps: int = 100) -> None:
    """``steps`` training steps of one second each, then a metric."""
    progress.phase("train", total=steps, unit="step")
    for step in range(1, steps + 1):
        clock.t += 1.0
        progress.update(step, loss=0.25)
    progress.phase("metric fid")
    progress.done()


def test_off_a_terminal_lines_only_a_phase_line_each_and_a_progress_line_every_interval(caplog):
    out = io.StringIO()  # a log file: not a terminal
    clock = Clock()
    progress = Progress("ddpm digits s0", terminal_mode(stream=out), every=10.0, stream=out, clock=clock)
    assert progress.mode == "lines"
    with caplog.at_level(logging.INFO, logger="genbench"):
        training(progress, clock)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "[ddpm digits s0] train (100 steps)" and "[ddpm digits s0] metric fid" in lines
    periodic = [line for line in lines if re.search(r"train step \d+/100 ", line)]
    # a step takes 1 s: a line every 10 steps
    assert len(periodic) == 10, lines
    first = periodic[0]
    assert first.startswith("[ddpm digits s0] train step 10/100 loss=0.25 ") and first.endswith("eta 1m30s"), first
    assert re.search(r" 1 step/s ", first), first
    assert "[ddpm digits s0] train done (1m40s)" in lines  # a long phase closes with its duration
    assert [r.getMessage() for r in caplog.records] == lines  # log.txt gets exactly the same lines


def test_on_a_terminal_one_bar_per_cell_and_lines_above_it():
    tty = Terminal()
    clock = Clock()
    progress = Progress("vae digits s1", terminal_mode(stream=tty), stream=tty, clock=clock)
    assert progress.mode == "bars"
    progress.phase("train", total=50, unit="step")
    for step in range(1, 51):
        clock.t += 1.0
        progress.update(step, loss=1.5)
    progress.line("feature extractor classifier: loading")
    progress.phase("metric kid")
    progress.done()
    text = tty.getvalue()
    assert "\r" in text and "[vae digits s1] train:" in text and "/50" in text and "step/s" in text
    assert "[vae digits s1] metric kid" in text  # the bar's description names the phase
    assert "\n[vae digits s1] feature extractor classifier: loading\n" in text.replace("\r", "\n")
    assert "train step 10/50" not in text  # no periodic lines on a terminal: the bar says it


def test_phases_mode_has_phase_lines_but_no_periodic_lines_and_quiet_has_nothing(caplog):
    for mode, expected in (("phases", ["[x] train (100 steps)", "[x] train done (1m40s)", "[x] metric fid"]),
                           ("quiet", [])):
        out = io.StringIO()
        caplog.clear()
        clock = Clock()
        with caplog.at_level(logging.INFO, logger="genbench"):
            training(Progress("x", mode, every=10.0, stream=out, clock=clock), clock)
        assert out.getvalue().splitlines() == expected, mode
        assert sum("train step" in r.getMessage() for r in caplog.records) == 10, mode  # log.txt keeps them


def test_time_budgets_count_time_and_tell_the_step():
    out = io.StringIO()
    clock = Clock()
    progress = Progress("gan digits s0", "lines", every=30.0, stream=out, clock=clock)
    progress.phase("train", total=270.0, unit="s")
    for step in range(1, 60):  # 1.5 s of training per step, 2 s of wall time (validation is not training)
        clock.t += 2.0
        progress.update(step * 1.5, step=step)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[gan digits s0] train (4m30s budget)"
    assert lines[1] == "[gan digits s0] train 23s/4m30s step=15 eta 4m08s", lines


def test_mode_choice_and_bad_values():
    assert terminal_mode(stream=Terminal()) == "bars" and terminal_mode(stream=io.StringIO()) == "lines"
    assert terminal_mode(quiet=True, stream=Terminal()) == "quiet"
    assert terminal_mode(no_progress=True, stream=Terminal()) == "phases"
    assert resolve_mode(False) == "quiet" and resolve_mode("phases") == "phases"
    with pytest.raises(ValueError, match="progress must be one of"):
        resolve_mode("loud")
    with pytest.raises(ValueError, match="interval must be positive"):
        Progress("x", "lines", every=0)
    assert [duration(s) for s in (0, 45, 60, 330, 600, 3720)] == ["0s", "45s", "1m", "5m30s", "10m", "1h02m"]


def test_current_is_the_active_cell_and_muted_keeps_only_free_lines():
    out = io.StringIO()
    cell = Progress("c", "lines", stream=out, clock=Clock())
    assert current() is NULL
    with cell.active():
        assert current() is cell
        with muted():
            current().phase("sampling DDIM-50", total=10, unit="images")
            current().line("feature extractor classifier: loading")
        assert current() is cell
    assert current() is NULL
    assert out.getvalue() == "[c] feature extractor classifier: loading\n"


def test_grid_bar_on_a_terminal_and_a_line_per_cell_off_it():
    tty, log = Terminal(), io.StringIO()
    for stream in (tty, log):
        grid = GridProgress(2, terminal_mode(stream=stream), stream=stream)
        for what in ("vae on digits seed 0", "gan on digits seed 0"):
            grid.start(what)
            grid.advance()
        grid.close()
    assert "\r" in tty.getvalue() and "2/2" in tty.getvalue()
    assert log.getvalue() == "[grid] cell 1/2: vae on digits seed 0\n[grid] cell 2/2: gan on digits seed 0\n"


def test_warnings_are_written_above_the_bars_with_their_own_level(monkeypatch):
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    root = logging.getLogger("genbench-test-root")
    root.propagate = False
    handler = logging.StreamHandler(tty)
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        with logs_above_bars(logger=root):
            progress = Progress("x", "bars", stream=tty)
            progress.phase("train", total=10, unit="step")
            root.info("not shown")
            root.warning("careful")
            progress.done()
        assert root.handlers == [handler]
    finally:
        root.removeHandler(handler)
    text = tty.getvalue()
    assert "not shown" not in text and "careful\n" in text.replace("\r", "\n")


RUN = ["run", "--models", "independent", "--preset", "tiny", "--extractors", "random-cnn", "--no-report"]


def test_a_run_off_a_terminal_logs_lines_and_quiet_prints_only_the_final_line(process_registry, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, [*RUN, "--out", str(out), "--progress-every", "1e-9"])
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stderr
    for phase in ("data digits", "train (5 steps)", "sampling default (16 images)", "metric fid", "writing rows",
                  "feature extractor random-cnn"):
        assert f"[independent digits s0] {phase}" in res.stderr, (phase, res.stderr)
    assert re.search(r"\[independent digits s0\] train step \d/5 loss=\S+ .*step/s eta", res.stderr), res.stderr
    assert re.search(r"^\[ok\] independent on digits seed 0 \(", res.stdout, re.M), res.stdout
    (log_txt,) = out.glob("runs/*/log.txt")
    logged = log_txt.read_text()
    assert "[independent digits s0] train (5 steps)" in logged and "[independent digits s0] train step 5/5" in logged
    assert "[independent digits s0] metric kid" in logged

    quiet = CliRunner().invoke(main, [*RUN, "--out", str(out), "--seeds", "1", "--quiet"])  # the cache is warm
    assert quiet.exit_code == 0, quiet.output
    lines = quiet.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("1 of 1 cells finished"), quiet.output
    (log_txt,) = out.glob("runs/independent-digits-s1-*/log.txt")
    assert "[independent digits s1] train (5 steps)" in log_txt.read_text()  # the log keeps every line


def test_help_tells_no_progress_from_quiet():
    text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "--quiet" in text and "--no-progress" in text and "--progress-every" in text
    assert "phase" in text and "errors" in text
