"""Bad input to `genbench run` / `genbench fid` is refused before work starts: exit code, one line naming the
option and the fix, nothing written, earlier results untouched."""
from __future__ import annotations

import errno
import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import genbench_independent
import genbench_vae
from genbench import ModelConfig, plugins
from genbench.cli import main
from genbench.plugins import build_registry
from genbench.validation import FIELD_RULES, ValidationError, check_config, check_out_dir, rule_for

RUN = ["run", "--preset", "tiny", "--extractors", "random-cnn", "--no-progress"]


@pytest.fixture(scope="module")
def cli_registry():
    """The CLI's registry: the reference model and the VAE (a config with a learning rate); no entry points."""
    with plugins.using_registry(build_registry(extra=[genbench_independent, genbench_vae], autoload=False)):
        yield


def refused(args: list[str], *needles: str) -> str:
    """Run the CLI, check it refused with one line containing ``needles``; return that line."""
    res = CliRunner().invoke(main, args)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code != 0, res.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(cli_registry, tmp_path_factory):
    """An output folder holding one finished cell (the earlier results every refusal must leave alone)."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    res = CliRunner().invoke(main, [*RUN, "--models", "independent", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


BAD_RUNS = [
    (["--models", "independent", "--steps", "-5"], ["--steps -5", "--steps 1000"]),
    (["--models", "independent", "--minutes", "-1"], ["--minutes -1", "--minutes 5"]),
    (["--models", "independent", "--minutes", "nan"], ["--minutes nan"]),
    (["--models", "independent", "--set", "batch_size=-4"], ["--set batch_size=-4", "batch_size=64"]),
    (["--models", "independent", "--n-samples", "0"], ["--n-samples 0", "FID needs at least 2"]),
    (["--models", "independent", "--n-samples", "1"], ["--n-samples 1"]),
    (["--models", "independent", "--set", "eval_every=0"], ["--set eval_every=0", "eval_every=250"]),
    (["--models", "independent", "--set", "sample_batch_size=0"], ["sample_batch_size"]),
    (["--models", "independent", "--set", "sample_every=0"], ["sample_every"]),
    (["--models", "independent", "--set", "alpha=inf"], ["--set alpha=inf", "finite"]),
    (["--models", "vae", "--set", "lr=nan"], ["--set lr=nan", "learning rate"]),
    (["--models", "vae", "--set", "lr=-1e-3"], ["--set lr=-0.001"]),
    (["--models", ""], ["--models ''", "names nothing"]),
    (["--models", " , "], ["names nothing"]),
    (["--models", "independent", "--seeds", ""], ["--seeds ''", "names nothing"]),
    (["--models", "independent", "--dataset", ""], ["--dataset ''"]),
    (["--models", "independent", "--seeds", "0,0"], ["seed 0", "--seeds"]),
    (["--models", "independent,independent"], ["independent"]),
    (["--models", "no-such-model"], ["no-such-model"]),
    (["--models", "independent", "--dataset", "no-such-data"], ["no-such-data"]),
    (["--models", "independent", "--preset", "no-such-preset"], ["no-such-preset"]),
    (["--models", "independent", "--set", "no_field=1"], ["no_field"]),
    (["--models", "independent", "--cell-timeout", "0"], ["--cell-timeout 0"]),
    (["--models", "independent", "--checkpoint-every-steps", "-1"], ["--checkpoint-every-steps -1"]),
    (["--models", "independent", "--checkpoint-every-seconds", "nan"], ["--checkpoint-every-seconds nan"]),
]


@pytest.mark.parametrize("args,needles", BAD_RUNS, ids=[" ".join(a[2:] or a) for a, _ in BAD_RUNS])
def test_bad_run_options_are_refused_before_work(finished, args, needles):
    before = tree_digest(finished)
    refused([*RUN, "--out", str(finished), *args], *needles)
    assert tree_digest(finished) == before  # earlier results untouched, nothing new written
    fresh = finished.parent / "fresh"
    refused([*RUN, "--out", str(fresh), *args], *needles)
    assert not fresh.exists()


def _npz(path: Path, levels: int) -> Path:
    x = np.random.default_rng(0).integers(0, 2, size=(40, 4, 4), dtype=np.uint8)
    np.savez(path, x=x, levels=levels)
    return path


def _pngs(folder: Path, truncate: str | None = None) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8)).astype(np.uint8)).save(folder / f"{i}.png")
    if truncate:
        data = (folder / truncate).read_bytes()
        (folder / truncate).write_bytes(data[: len(data) // 2])
    return folder


def test_bad_data_files_are_refused_naming_the_file(cli_registry, tmp_path):
    out = tmp_path / "out"
    base = [*RUN, "--models", "independent", "--out", str(out)]
    refused([*base, "--dataset", str(_npz(tmp_path / "one.npz", 1))], "one.npz", "levels=1", "at least 2")
    refused([*base, "--dataset", str(_npz(tmp_path / "huge.npz", 10**9))], "huge.npz", "1000000000", "65536")
    refused([*base, "--dataset", str(_pngs(tmp_path / "pngs", truncate="3.png"))], "3.png", "truncated")
    assert not out.exists()


def test_fid_refuses_truncated_images_and_nan_samples(cli_registry, tmp_path):
    good = _pngs(tmp_path / "good")
    cut = _pngs(tmp_path / "cut", truncate="2.png")
    nan = tmp_path / "nan.npz"
    x = np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)
    x[3, 0, 1, 1] = np.nan
    np.savez(nan, x=x)
    fid = ["fid", "--extractors", "random-cnn", "--dataset", "digits", "--no-cache"]
    refused([*fid, str(good), str(cut)], "2.png", "truncated")
    refused([*fid, str(good), str(nan)], "nan.npz", "NaN", "1 of 10 images")


def test_out_under_a_file_or_read_only_is_refused_before_work(cli_registry, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused([*RUN, "--models", "independent", "--out", str(blocker / "sub" / "out")], "is a file", "folder path")
    assert blocker.read_text() == "not a folder"
    with pytest.raises(ValidationError, match="is a file"):
        check_out_dir(blocker)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # what a read-only mount answers to creating the probe
    refused([*RUN, "--models", "independent", "--out", str(tmp_path / "ro" / "out")], "Read-only file system",
            "writable folder")
    assert not (tmp_path / "ro").exists()


@dataclass
class PluginConfig(ModelConfig):
    """A third party's config: the rules come from the field names, whatever the class."""

    lr_g: float = 2e-4
    encoder_lr: float = 1e-3
    dropout: float = 0.1
    use_thing: bool = False


@pytest.mark.parametrize("field,value,needle", [
    ("lr_g", 0.0, "learning rate"), ("encoder_lr", -1.0, "learning rate"), ("dropout", math.nan, "finite"),
    ("batch_size", 2.5, "whole number"), ("max_steps", None, "training budget"), ("sample_steps", [], "sampler steps"),
    ("sample_steps", [None, 0], "sampler steps"),
])
def test_rules_come_from_field_names_so_plugin_configs_get_them(field, value, needle):
    config = PluginConfig(**{field: value})
    with pytest.raises(ValidationError, match=needle) as err:
        check_config(config, "third-party", "quick", given=[field])
    assert "\n" not in str(err.value) and "use e.g." in str(err.value)
    check_config(PluginConfig(), "third-party", "quick")  # the defaults pass
    check_config(PluginConfig(max_steps=None, max_minutes=1.0, use_thing=True), "third-party", "quick")
    assert rule_for("lr") is rule_for("lr_d") is rule_for("ae_lr") and rule_for("n_samples") is FIELD_RULES["n_samples"]


def test_a_preset_that_breaks_a_rule_is_named(cli_registry):
    with pytest.raises(ValidationError, match="preset 'quick' of model 'x' sets eval_every=0"):
        check_config(PluginConfig(eval_every=0), "x", "quick", given=[])


def test_a_failed_cell_prints_one_line_and_its_traceback_only_with_debug(cli_registry, tmp_path):
    args = [*RUN, "--models", "independent", "--set", "alpha=-5", "--no-report"]  # negative counts: NaN log-probs
    quiet = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert quiet.exit_code == 1 and "Traceback" not in quiet.output
    (failed,) = [line for line in quiet.output.splitlines() if "FAILED" in line]
    assert "diverged at step 1" in failed
    (log,) = (tmp_path / "a").glob("runs/*/log.txt")
    assert "Traceback" in log.read_text()
    loud = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b"), "--debug"])
    assert loud.exit_code == 1 and "Traceback" in loud.output and "DivergenceError" in loud.output
    debug = CliRunner().invoke(main, [*RUN, "--models", "independent", "--steps", "-5", "--debug",
                                      "--out", str(tmp_path / "c")])
    assert debug.exit_code != 0 and isinstance(debug.exception, ValidationError)  # raised: the traceback is shown
