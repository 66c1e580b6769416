"""README "Evaluate your own model": every code block of the section runs as written, in order, on digits
(samples -> genbench eval, a checkpoint -> genbench run --checkpoint, a plugin with --steps 0), and the report
puts the external model on the leaderboard."""
from __future__ import annotations

import glob
import json
import re
import shlex
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import genbench_independent
from genbench import plugins
from genbench.cli import main
from genbench.metrics.base import EXTRACTORS_ENV

README = Path(__file__).resolve().parents[1] / "README.md"


def section_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block in the section, in order."""
    text = README.read_text()
    start = text.index("## Evaluate your own model")
    body = text[start:text.index("\n## ", start + 3)]
    return re.findall(r"```(python|bash)\n(.*?)```", body, flags=re.S)


def test_the_section_has_the_three_routes():
    blocks = section_blocks()
    commands = "\n".join(code for lang, code in blocks if lang == "bash")
    assert "genbench eval " in commands and "--checkpoint " in commands and "--steps 0" in commands
    assert "digits:test" in commands and "genbench export " in commands


def test_every_block_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("diffusers")  # route 3's example needs it
    import genbench_diffusers
    import genbench_vae

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(EXTRACTORS_ENV, "random-cnn")  # the classifier takes a minute to fit; the commands are unchanged
    registry = plugins.build_registry(extra=[genbench_independent, genbench_vae, genbench_diffusers], autoload=False)
    with plugins.using_registry(registry):
        for lang, code in section_blocks():
            if lang == "python":
                exec(compile(code, "README.md", "exec"), {})
                continue
            for line in code.splitlines():
                args = shlex.split(line, comments=True)
                if not args:
                    continue
                assert args[0] == "genbench", line
                args = [hit for a in args[1:] for hit in (sorted(glob.glob(a)) if "*" in a else [a])]
                t0 = time.perf_counter()
                res = CliRunner().invoke(main, args)
                print(f"{time.perf_counter() - t0:6.1f}s  {line}")
                assert res.exit_code == 0, f"{line}\n{res.output}"
    board = json.loads((tmp_path / "reports" / "results.json").read_text())
    text = json.dumps(board)
    for model in ("my-model", "vae", "diffusers"):
        assert f'"{model}"' in text, model
    assert '"external"' in text
