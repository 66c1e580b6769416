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


def test_the_leaderboard_block_copies_results_md():
    """Every row of results.md's quality table, its FID cell verbatim; the likelihood figures with their kinds."""
    results = (ROOT / "bench" / "results" / "leaderboard_standard_digits.md").read_text(encoding="utf-8")
    quality = readme_tables.markdown_tables(results)["Sample quality"]
    table = readme_tables.markdown_tables("#### t\n" + readme_tables.leaderboard_standard_digits())["t"]
    assert [r["model"] for r in table] == [r["model"] for r in quality]
    assert [r["FID ↓"] for r in table] == [r["FID ↓"] for r in quality]
    assert [r["precision ↑"] for r in table] == [r["precision ↑"].split(" ± ")[0] for r in quality]
    pixelcnn = next(r for r in table if r["model"] == "pixelcnn")
    assert pixelcnn["bits/dim ↓ (kind)"] == "1.740 ± 0.011 (exact)"
    assert table[-1]["model"] == "real data (floor)" and table[-1]["FID / floor"] == "1"
    ratio = {r["sampler"]: float(r["FID / floor"]) for r in table if r["model"] == "ddpm"}
    assert ratio["DDIM-50"] == pytest.approx(4.2 / 3.333, abs=0.01)  # mean over seeds / mean floor


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
    changed.write_text(text.replace("| 4.4 ± 2.2 |", "| 4.3 ± 2.2 |", 1), encoding="utf-8")
    assert readme_tables.main(["--check", "--readme", str(changed)]) == 1
    assert "out of date: leaderboard_standard_digits" in capsys.readouterr().err
    assert readme_tables.main(["--readme", str(changed)]) == 0 and changed.read_text(encoding="utf-8") == text
    missing = tmp_path / "bare.md"
    missing.write_text("no blocks\n")
    assert readme_tables.main(["--check", "--readme", str(missing)]) == 1
