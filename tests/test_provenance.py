"""genbench.provenance.code_commit: git's answer inside a checkout, "unknown" outside one; a stated commit (a copy of
the tree on a GPU machine) replaces both, marked as stated."""
from __future__ import annotations

import subprocess

from genbench.provenance import code_commit


def test_inside_a_checkout_the_commit_is_gits(monkeypatch):
    monkeypatch.delenv("GENBENCH_SOURCE_COMMIT", raising=False)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if head:  # a git checkout (CI's clone, a developer's tree)
        assert code_commit().removesuffix("+dirty") == head


def test_a_stated_commit_replaces_gits_answer_and_is_marked(tmp_path, monkeypatch):
    monkeypatch.delenv("GENBENCH_SOURCE_COMMIT", raising=False)
    assert code_commit(tmp_path) == "unknown"
    monkeypatch.setenv("GENBENCH_SOURCE_COMMIT", "abc123")
    assert code_commit(tmp_path) == "abc123 (stated)"
    assert code_commit() == "abc123 (stated)"
