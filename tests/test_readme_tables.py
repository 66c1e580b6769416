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


APART_MD = """# grid

#### Sample quality (preset standard, n=1000)

| model | sampler | seeds | FID ↓ | FID / floor ↓ | precision ↑ | recall ↑ | confident share ↑ |
|---|---|--:|--:|--:|--:|--:|--:|
| vae | decoder-draw | 1 | 60.7 ± 6.6 | 86 ± 122 | 0.525 ± 0.075 | 0.81 ± 0.15 | 0.167 ± 0.023 |
| independent (baseline) | default | 1 | 390.3 ± 6.7 | 556 ± 781 | 0.53 ± 0.70 | 0 | 0 |
| pixelcnn (other classifier weights) | autoregressive-fast | 1 | 154 ± 14 | 219 ± 309 | 0.29 ± 0.11 | 0.78 ± 0.12 | 0.305 ± 0.029 |
| real data (floor) |  | 1 | 0.70 ± 0.99 | 1 | 0.896 ± 0.035 | 0.906 ± 0.033 | 0.5354 ± 0.0098 |
| real data (floor, other classifier weights) |  | 1 | 0.70 ± 0.99 | 1 | 0.896 ± 0.035 | 0.906 ± 0.033 | 0.5354 ± 0.0098 |

#### Likelihood (preset standard, n=3000)

| model | seeds | bits/dim (exact) ↓ | bits/dim (ELBO) ↓ |
|---|--:|--:|--:|
| vae | 1 | — | 3.351 ± 0.034 |
| pixelcnn | 1 | 3.038 ± 0.031 | — |
| independent (baseline) | 1 | 4.594 ± 0.040 | — |

#### Cost (preset standard, n=1000)

| model | sampler | seeds | images/s ↑ | NFE ↓ | FLOPs/image ↓ | train s ↓ |
|---|---|--:|--:|--:|--:|--:|
| pixelcnn | autoregressive-fast | 1 | 7.807 | 784 | 8.17G | 1200 |
| vae | decoder-draw | 1 | 1187 | 1 | 280M | 1201 |
| independent (baseline) | default | 1 | 36.3k | 1 | 0 | 0.3944 |
"""


def test_a_row_kept_apart_keeps_its_likelihood_and_cost(tmp_path, monkeypatch):
    """A row results.md keeps apart ("pixelcnn (other classifier weights)") is the same model in the likelihood and
    cost tables, which do not depend on the extractor; every floor row, its own tag or not, is a floor."""
    (tmp_path / "apart.md").write_text(APART_MD, encoding="utf-8")
    monkeypatch.setattr(readme_tables, "RESULTS", tmp_path)
    rows = {r["model"]: r for r in readme_tables.markdown_tables("#### t\n" + readme_tables.leaderboard_table("apart"))["t"]}
    apart = rows["pixelcnn (other classifier weights)"]
    assert (apart["bits/dim ↓ (kind)"], apart["NFE"], apart["FLOPs/image"], apart["train s"]) == (
        "3.038 ± 0.031 (exact)", "784", "8.17G", "1200")
    assert rows["independent (baseline)"]["bits/dim ↓ (kind)"] == "4.594 ± 0.040 (exact)"
    for label in ("real data (floor)", "real data (floor, other classifier weights)"):
        floor = rows[label]
        assert (floor["FID / floor ↓"], floor["sampler"], floor["bits/dim ↓ (kind)"], floor["NFE"]) == ("1", "", "", "")


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
