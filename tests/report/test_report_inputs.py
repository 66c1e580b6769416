"""What the report reads: rows.json (typed; rows.csv is never read), filters, reproducing commands."""
from __future__ import annotations

import json
from pathlib import Path

from report_fakes import write_failed, write_run

from genbench.report.inputs import load_runs, read_rows, real_grid_png, run_command, select_runs


def test_rows_come_from_rows_json_not_rows_csv(tmp_path: Path) -> None:
    run = write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    (run / "rows.csv").write_text("garbage,that,is\nnot,a,row\n")
    write_failed(tmp_path, "gan", "RuntimeError: boom")
    frame, statuses = load_runs(tmp_path / "runs")
    rows = read_rows(run)
    assert len(frame) == len(rows) and set(frame["model"]) == {"vae"}
    assert [s["state"] for s in statuses] == ["failed", "done"]  # every status, in folder order
    fid = frame[frame["metric"] == "fid"].iloc[0]
    assert fid["value"] == next(r["value"] for r in rows if r["metric"] == "fid")  # exact floats, no CSV round trip
    assert fid["role"] == "model" and fid["higher_is_better"] is False


def test_filters_take_shell_patterns(tmp_path: Path) -> None:
    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    write_run(tmp_path, "ddpm", 0, {"default": (9.0, 10.0, 1)}, {"VLB": 2.0})
    write_run(tmp_path, "ddpm", 0, {"default": (9.0, 10.0, 1)}, {"VLB": 2.0}, dataset="other")
    sel = select_runs(tmp_path / "runs", models=["dd*"], datasets=["digits"])
    assert set(zip(sel.frame["model"], sel.frame["dataset"])) == {("ddpm", "digits")}
    assert [s["model"] for s in sel.done] == ["ddpm"] and sel.failed == []
    assert set(sel.configs) == {s["run_id"] for s in sel.done}


def test_run_command_names_what_differs_from_the_preset(registry) -> None:
    cmd = run_command("nosuchmodel", "digits", [2, 0], "quick", {"batch_size": 64, "tag": "a b"}, registry, "cpu")
    # an unknown model's preset cannot be resolved here: every field is spelled out, quoted for the shell
    assert cmd == "genbench run --models nosuchmodel --dataset digits --seeds 0,2 --preset quick --device cpu " \
                  "--set batch_size=64 --set 'tag=a b'"


def test_real_grid_is_read_from_a_run_or_explained(tmp_path: Path, registry) -> None:
    (tmp_path / "real_test.png").write_bytes(b"\x89PNG saved")
    assert real_grid_png("digits", registry, run_dirs=[tmp_path]) == (b"\x89PNG saved", "")
    png, why = real_grid_png("no-such-data", registry)
    assert png is None and why
