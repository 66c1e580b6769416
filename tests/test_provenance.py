"""genbench.provenance.code_commit: git's answer inside a checkout; outside one, the stated commit marked as such."""
from __future__ import annotations

import subprocess

from genbench.provenance import code_commit


def test_inside_a_checkout_the_commit_is_gits(monkeypatch):
    monkeypatch.setenv("GENBENCH_SOURCE_COMMIT", "abc123")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    got = code_commit()
    if head:  # a git checkout (CI's clone, a developer's tree)
        assert got.removesuffix("+dirty") == head and "stated" not in got


def test_outside_a_checkout_the_stated_commit_is_marked(tmp_path, monkeypatch):
    monkeypatch.delenv("GENBENCH_SOURCE_COMMIT", raising=False)
    assert code_commit(tmp_path) == "unknown"
    monkeypatch.setenv("GENBENCH_SOURCE_COMMIT", "abc123")
    assert code_commit(tmp_path) == "abc123 (stated)"
