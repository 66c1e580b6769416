"""Which rows may be ranked together: preset, split, sample size and extractor weights; tiny runs left out."""
from __future__ import annotations

import pandas as pd

from genbench.report.settings import Setting, drop_tiny, main_setting, row_setting


def _rows(preset: str = "quick", n: int = 1000, sha: str = "aa") -> pd.DataFrame:
    return pd.DataFrame({"run_id": ["r", "r"], "preset": [preset] * 2, "split": ["s1", "s1"], "n": [n, min(n, 300)],
                         "extractor": ["classifier", ""], "extractor_sha256": [sha, ""]})


def test_a_rows_setting_and_how_it_differs() -> None:
    main = row_setting(_rows())
    assert main == Setting("quick", "s1", 1000, (("classifier", "aa"),)) and main.describe() == "preset quick, n=1000"
    assert row_setting(_rows("tiny", 8)).difference(main) == "tiny, n=8"
    assert row_setting(_rows("tiny", 8)).difference(main, "vae [tiny]") == "n=8"  # the name already says tiny
    assert row_setting(_rows(sha="bb")).difference(main) == "other classifier weights"


def test_the_main_setting_is_not_tiny_then_the_one_most_models_share() -> None:
    quick, tiny, small = Setting("quick", "s", 1000, ()), Setting("tiny", "s", 8, ()), Setting("quick", "s", 500, ())
    # three rows of one tiny model do not outvote two quick models
    assert main_setting([("ddpm", tiny)] * 3 + [("vae", quick), ("gan", quick)]) == quick
    assert main_setting([("a", small), ("b", quick)]) == quick  # a tie goes to the larger n
    assert main_setting([("a", tiny)]) == tiny and main_setting([]) is None


def test_tiny_runs_are_dropped_and_counted() -> None:
    frame = pd.DataFrame({"run_id": ["a", "a", "b", "c"], "preset": ["tiny", "tiny", "quick", "tiny"]})
    kept, hidden = drop_tiny(frame)
    assert list(kept["run_id"]) == ["b"] and hidden == 2
