"""README.md's generated tables agree with the committed results files (`make readme-tables` regenerates them)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "tools" / "readme_tables.py")
readme_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_tables)


def test_readme_tables_agree_with_the_results_files():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_tables.stale_blocks(text) == [], "README.md disagrees with bench/results/: run `make readme-tables`"


def _table(tables: dict, title: str) -> list[dict]:
    return next(rows for name, rows in tables.items() if name == title or name.startswith(title + " ("))


def test_the_leaderboard_block_copies_results_md():
    """Every row of results.md's quality table, its FID and FID / floor cells verbatim (with their intervals); the
    likelihood figures with their kinds; the memorisation share with its interval."""
    results = readme_tables.markdown_tables(
        (ROOT / "bench" / "results" / "leaderboard_standard_digits.md").read_text(encoding="utf-8"))
    quality = _table(results, "Sample quality")
    table = readme_tables.markdown_tables("#### t\n" + readme_tables.leaderboard_standard_digits())["t"]
    assert [r["model"] for r in table] == [r["model"] for r in quality]
    assert [r["FID ↓"] for r in table] == [r["FID ↓"] for r in quality]
    ratio_column = next(h for h in quality[0] if h.startswith("FID / floor"))
    assert [r["FID / floor ↓"] for r in table[:-1]] == [r[ratio_column] for r in quality[:-1]]
    assert all(" ± " in r["FID / floor ↓"] for r in table[:-1])  # 3 seeds: every ratio has its interval
    assert [r["precision ↑"] for r in table] == [r["precision ↑"].split(" ± ")[0] for r in quality]
    likelihood = {r["model"]: r for r in _table(results, "Likelihood")}
    pixelcnn = next(r for r in table if r["model"] == "pixelcnn")
    assert pixelcnn["bits/dim ↓ (kind)"] == likelihood["pixelcnn"]["bits/dim (exact) ↓"] + " (exact)"
    assert table[-1]["model"] == "real data (floor)" and table[-1]["FID / floor ↓"] == "1"
    memorisation = _table(results, "Memorisation")
    near = next(h for h in memorisation[0] if h.startswith("closer to train than test p5") and h.endswith("[classifier]"))
    by = {(r["model"], r["sampler"]): r[near] for r in memorisation}
    assert all(r["closer than test p5 (0.05)"] == by[(r["model"], r["sampler"])] for r in table[:-1])


def test_a_stale_block_is_found_and_rewritten_and_the_rest_left_alone():
    blocks = {"n": lambda: "| a |\n|--:|\n| 2 |\n"}
    text = "intro\n<!-- generated:n -->\n| a |\n|--:|\n| 1 |\n<!-- /generated -->\nprose | kept\n"
    new = readme_tables.regenerated(text, blocks)
    assert new == text.replace("| 1 |", "| 2 |")
    assert readme_tables.regenerated(new, blocks) == new
    with pytest.raises(readme_tables.ReadmeError, match="does not know"):
        readme_tables.regenerated("<!-- generated:other -->\nx\n<!-- /generated -->\n", blocks)
    with pytest.raises(readme_tables.ReadmeError, match="opens and closes once"):
        readme_tables.regenerated("<!-- generated:n -->\nx\n", blocks)


def test_check_exits_1_on_a_disagreeing_readme(tmp_path, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    changed = tmp_path / "README.md"
    first_fid = readme_tables.markdown_tables("#### t\n" + readme_tables.leaderboard_standard_digits())["t"][0]["FID ↓"]
    assert f"| {first_fid} |" in text
    changed.write_text(text.replace(f"| {first_fid} |", "| 999 |", 1), encoding="utf-8")
    assert readme_tables.main(["--check", "--readme", str(changed)]) == 1
    assert "out of date: leaderboard_standard_digits" in capsys.readouterr().err
    assert readme_tables.main(["--readme", str(changed)]) == 0 and changed.read_text(encoding="utf-8") == text
    missing = tmp_path / "bare.md"
    missing.write_text("no blocks\n")
    assert readme_tables.main(["--check", "--readme", str(missing)]) == 1
