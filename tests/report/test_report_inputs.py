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


def _damage(run: Path, name: str, how: str) -> None:
    path = run / name
    data = path.read_bytes()
    path.write_bytes({"cut": data[: len(data) // 2], "garbage": b"\xff\xfe\x00\x81garbage", "empty": b""}[how])


def test_damaged_run_folders_are_skipped_with_a_line_naming_the_file(tmp_path: Path, caplog) -> None:
    import logging

    good = write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    damaged = {how: write_run(tmp_path, "vae", seed, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
               for seed, how in enumerate(["cut", "garbage", "empty"], start=1)}
    for how, run in damaged.items():
        _damage(run, "rows.json", how)
    cut_status = write_run(tmp_path, "gan", 0, {"default": (5.0, 10.0, 1)}, {})
    _damage(cut_status, "status.json", "cut")
    cut_csv = write_run(tmp_path, "ddpm", 0, {"default": (3.0, 10.0, 1)}, {"VLB": 1.6})
    csv = (cut_csv / "rows.csv").read_text().splitlines(keepends=True)
    (cut_csv / "rows.csv").write_text("".join(csv[:3]))  # cut at a line boundary: rows.json is what counts
    with caplog.at_level(logging.WARNING, logger="genbench"):
        frame, statuses = load_runs(tmp_path / "runs")
    assert set(frame["run_id"]) == {good.name, cut_csv.name}
    assert len(frame[frame["run_id"] == cut_csv.name]) == len(read_rows(cut_csv))
    states = {Path(s["run_dir"]).name: s["state"] for s in statuses}
    assert cut_status.name not in states  # its status cannot be read: the folder is skipped
    assert all(states[run.name] == "damaged" for run in damaged.values())  # never shown as complete
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and all("\n" not in line for line in lines)
    for run in damaged.values():
        assert any(str(run / "rows.json") in line for line in lines)
    assert any(str(cut_status / "status.json") in line for line in lines)
    sel = select_runs(tmp_path / "runs")
    assert {s["run_id"] for s in sel.done} == {good.name, cut_csv.name}
    assert {s["run_id"] for s in sel.failed} == {run.name for run in damaged.values()}


def test_a_running_or_failed_cell_is_never_complete_even_with_rows_on_disk(tmp_path: Path) -> None:
    run = write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    status = json.loads((run / "status.json").read_text())
    for state in ("running", "failed", "interrupted"):
        (run / "status.json").write_text(json.dumps({**status, "state": state}))
        frame, statuses = load_runs(tmp_path / "runs")
        assert frame.empty and [s["state"] for s in statuses] == [state]


def test_genbench_report_survives_damaged_folders(tmp_path: Path, registry) -> None:
    from click.testing import CliRunner

    from genbench import plugins
    from genbench.cli import main

    write_run(tmp_path, "vae", 0, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0})
    _damage(write_run(tmp_path, "vae", 1, {"default": (9.0, 10.0, 1)}, {"ELBO": 2.0}), "rows.json", "garbage")
    _damage(write_run(tmp_path, "gan", 0, {"default": (5.0, 10.0, 1)}, {}), "status.json", "cut")
    with plugins.using_registry(registry):
        res = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and (tmp_path / "index.html").exists()
