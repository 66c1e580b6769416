"""bench/cells.py: a grid's finished cells survive the loss of their run folders.  ``save`` keeps the small files
(never checkpoints or sample arrays), ``restore`` brings them back so that `genbench run` skips the cell and
`genbench report` shows it, a finished or locked live folder is never overwritten, and ``recover`` rebuilds a
cell from a results file's rows only when the planned config hash is the rows' own."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from bench_scripts import load_script
from genbench.cli import main
from genbench.locks import RunLock
from genbench.report.export import with_derived_rows


def load_cells():
    return load_script("cells")


@pytest.fixture
def finished_grid(process_registry, tmp_path):
    """A two-cell grid run to the end (independent model, 3 steps, random-CNN features)."""
    grid = tmp_path / "tiny_grid.toml"
    out = tmp_path / "out"
    grid.write_text('models = ["independent"]\ndatasets = ["digits"]\nseeds = [0, 1]\npreset = "tiny"\n'
                    f'extractors = ["random-cnn"]\nout = "{out}"\n'
                    '[set]\nmax_steps = 3\nn_samples = 40\nsample_batch_size = 40\n')
    res = CliRunner().invoke(main, ["run", "--config", str(grid), "--no-progress", "--no-report"])
    assert res.exit_code == 0, res.output
    return grid, out


def test_save_then_restore_makes_run_skip_the_cells_and_the_report_show_them(finished_grid, tmp_path):
    cells = load_cells()
    grid, out = finished_grid
    archive = tmp_path / "archive"
    run_dirs = sorted((out / "runs").iterdir())
    assert len(run_dirs) == 2
    (run_dirs[0] / "checkpoints").mkdir(exist_ok=True)
    (run_dirs[0] / "checkpoints" / "last.pt").write_bytes(b"weights")
    saved = cells.save(str(grid), archive)
    assert sorted(saved) == [d.name for d in run_dirs]
    kept = {p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file()}
    cell_files = {k for k in kept if f"/{cells.EXTRACTORS}/" not in k}
    assert not any(k.endswith((".pt", ".npz", "/lock")) or "/checkpoints/" in k for k in cell_files)
    fitted = sorted(p.name for p in (out / "cache" / "extractors").iterdir() if p.is_file())
    assert fitted and any(n.endswith(".pt") for n in fitted)  # the grid's fitted features (random-CNN whitening)
    assert sorted(k.rsplit("/", 1)[1] for k in kept - cell_files) == fitted
    fitted_bytes = {n: (out / "cache" / "extractors" / n).read_bytes() for n in fitted}
    first = archive / grid.stem / run_dirs[0].name
    for name in ("status.json", "config.json", "rows.json", "curves.csv"):
        assert (first / name).is_file(), name
    assert list((first / "samples").glob("*.png"))  # the sample grid the report shows
    rows_before = json.loads((run_dirs[0] / "rows.json").read_text())

    shutil.rmtree(out)  # the machine lost its run folders
    restored, live = cells.restore(str(grid), archive)
    assert sorted(restored) == [d.name for d in run_dirs] and live == []
    assert {n: (out / "cache" / "extractors" / n).read_bytes() for n in fitted} == fitted_bytes  # same features
    status = json.loads((run_dirs[0] / "status.json").read_text())
    assert status["state"] == "done" and status["restored_from"].endswith(run_dirs[0].name)
    assert json.loads((run_dirs[0] / "rows.json").read_text()) == rows_before
    res = CliRunner().invoke(main, ["run", "--config", str(grid), "--no-progress", "--no-report"])
    assert res.exit_code == 0 and res.output.count("[cached]") == 2 and "[ok]" not in res.output, res.output
    report = CliRunner().invoke(main, ["report", str(out), "--include-tiny"])  # tiny cells are hidden by default
    assert report.exit_code == 0, report.output
    assert "independent" in (out / "results.md").read_text()
    assert cells.save(str(grid), archive) == []  # restored cells are not archived again
    assert cells.restore(str(grid), archive) == ([], sorted(saved))  # finished live folders are left alone


def test_an_archived_extractor_is_never_replaced_by_another_fit(finished_grid, tmp_path, capsys):
    cells = load_cells()
    grid, out = finished_grid
    archive = tmp_path / "archive"
    cells.save(str(grid), archive)
    weights = next(p for p in (out / "cache" / "extractors").iterdir() if p.suffix == ".pt")
    archived = archive / grid.stem / cells.EXTRACTORS / weights.name
    kept = archived.read_bytes()
    weights.write_bytes(b"another machine's fit")
    for status in (out / "runs").glob("*/status.json"):  # the cells count as new again
        status.write_text(status.read_text())
    cells.save(str(grid), archive)
    assert archived.read_bytes() == kept
    assert "differs" in capsys.readouterr().err
    cells.restore(str(grid), archive)  # this machine's copy is left alone too, with the same warning
    assert weights.read_bytes() == b"another machine's fit" and "differs" in capsys.readouterr().err


def test_restore_leaves_a_cell_being_written_alone(finished_grid, tmp_path):
    cells = load_cells()
    grid, out = finished_grid
    archive = tmp_path / "archive"
    cells.save(str(grid), archive)
    busy = sorted((out / "runs").iterdir())[0]
    (busy / "status.json").write_text(json.dumps({"state": "running"}))
    with RunLock(busy), pytest.raises(SystemExit, match="lock|writing|pid"):
        cells.restore(str(grid), archive)
    assert json.loads((busy / "status.json").read_text()) == {"state": "running"}


def test_recover_rebuilds_cells_from_results_rows_and_refuses_a_changed_config(finished_grid, tmp_path):
    cells = load_cells()
    grid, out = finished_grid
    run_dirs = sorted((out / "runs").iterdir())
    rows = [r for d in run_dirs for r in json.loads((d / "rows.json").read_text())]
    results = tmp_path / "results.json"
    # a results file holds the derived rows too: with_derived_rows puts them after the measured ones
    derived = with_derived_rows(pd.DataFrame(rows)).iloc[len(rows):]
    exported = rows + json.loads(derived.to_json(orient="records"))
    assert {"fid_over_floor", "kid_minus_floor"} <= {r["metric"] for r in exported}
    results.write_text(json.dumps({"stamp": {"commit": "abc123"}, "rows": exported}))
    archive = tmp_path / "archive"
    recovered = cells.recover(str(results), str(grid), archive)
    assert sorted(recovered) == [d.name for d in run_dirs]
    entry = archive / grid.stem / run_dirs[1].name
    assert json.loads((entry / "rows.json").read_text()) == json.loads((run_dirs[1] / "rows.json").read_text())
    status = json.loads((entry / "status.json").read_text())
    assert status["state"] == "done" and "abc123" in status["recovered"]
    shutil.rmtree(out)
    restored, _ = cells.restore(str(grid), archive)
    assert sorted(restored) == [d.name for d in run_dirs]
    res = CliRunner().invoke(main, ["run", "--config", str(grid), "--no-progress", "--no-report"])
    assert res.exit_code == 0 and res.output.count("[cached]") == 2, res.output

    other = tmp_path / "other-archive"
    for r in rows:  # rows of cells this grid does not plan: nothing matches
        r["run_id"] = "independent-digits-s9-0000000000"
    results.write_text(json.dumps({"stamp": {"commit": "abc123"}, "rows": rows}))
    assert cells.recover(str(results), str(grid), other) == []
    for r in rows:  # the grid's run id, but rows of another config: the preset changed since
        r["run_id"] = run_dirs[0].name
        r["config_hash"] = "0" * 64
    results.write_text(json.dumps({"stamp": {"commit": "abc123"}, "rows": rows}))
    with pytest.raises(SystemExit, match="train the cell again"):
        cells.recover(str(results), str(grid), other)
    assert not (other / grid.stem / run_dirs[0].name).exists()


def test_a_grid_whose_data_set_is_missing_stops_with_one_line(tmp_path, capsys):
    """restore on a machine without the grid's data files: the data set's how-to-get line, no traceback, no folder."""
    cells = load_cells()
    grid = tmp_path / "grid.toml"
    out = tmp_path / "out"
    grid.write_text(f'models = ["independent"]\ndatasets = ["{tmp_path / "absent.npz"}"]\nseeds = [0]\n'
                    f'preset = "tiny"\nout = "{out}"\n')
    with pytest.raises(SystemExit) as stop:
        cells.main(["restore", str(grid), "--archive", str(tmp_path / "archive")])
    message = str(stop.value)
    assert "absent.npz" in message and "\n" not in message and "Traceback" not in message
    assert not out.exists()


@pytest.mark.parametrize("grid", ["main_job", "leaderboard_standard_digits", "precision_fp32_digits",
                                  "precision_bf16_digits"])
def test_the_committed_cells_of_a_digits_grid_are_the_ones_it_plans(grid):
    """A change to a preset or to how configs hash (a new config field not left out at its default) gives the
    grid's cells new run ids, and `make bench` would silently re-train what bench/cells/ archived: every archived
    cell must still be one the grid plans (a cell still missing from the archive, like the precision grids' LDM,
    is allowed)."""
    from genbench.runner.precision import cpu_has_bf16

    if grid == "main_job" and not cpu_has_bf16():
        pytest.skip("the main job's presets ask for precision auto: bf16 run ids on the CPUs that made the cells")
    cells = load_cells()
    _, planned = cells.planned_cells(f"bench/grids/{grid}.toml", device="cpu")
    archived = {p.name for p in (cells.ARCHIVE / grid).iterdir() if not p.name.startswith("_")}
    assert archived and archived <= set(planned), sorted(archived - set(planned))
