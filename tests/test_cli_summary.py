"""The end-of-run summary (genbench.summary): the report's boards as results.md shows them, sized to the terminal."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from genbench.metrics.display import registry_displays
from genbench.plugins import build_registry
from genbench.report import build_boards
from genbench.report.formatting import display_rows
from genbench.results import COLUMNS, rows_frame
from genbench.summary import boards_text, column_chunks, summary_text

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "leaderboard_standard_digits.csv"
REGISTRY = build_registry(autoload=True)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """The committed standard leaderboard's tidy rows (7 families, 2-3 seeds), as rows.json holds them."""
    df = pd.read_csv(RESULTS, keep_default_na=False, na_values={"value": [""], "stderr": [""], "n": [""]})
    out = []
    for r in df.to_dict("records"):
        r = {c: r.get(c) for c in COLUMNS}
        for key in ("stderr", "n"):
            if isinstance(r[key], float) and math.isnan(r[key]):
                r[key] = None
        out.append(r)
    return out


@pytest.fixture(scope="module")
def boards(rows):
    """The boards results.md is written from."""
    return build_boards(rows_frame(rows), registry_displays(REGISTRY), include_tiny=True)


@pytest.mark.parametrize("width", [80, 200])
def test_every_cell_of_results_md_is_on_its_row_and_no_line_is_wider_than_the_terminal(boards, width):
    text = boards_text(boards, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for board in boards.values():
        for t in board.tables:
            header, body = display_rows(t)
            for title in header[3:]:  # every column title, with its arrow (a long one wraps at spaces)
                assert all(word in text for word in title.split()), title
            first_value = header.index("seeds") + 1
            for line in body:
                label, sampler = line[0].text, line[1].text if header[1] == "sampler" else ""
                on_row = [x for x in lines if x.startswith(label + " ") and f" {sampler} " in x]
                assert on_row, label
                for shown in line[first_value:]:
                    assert any(f" {shown.text}" in x for x in on_row), (t.name, label, shown.text)


def test_the_floor_row_is_once_per_table_part_and_readable_titles_replace_internal_names(rows):
    text = summary_text(rows, REGISTRY, width=120)  # rows -> boards -> text, as `genbench run` prints it
    parts = text.count("Sample quality")
    # the real-data reference row: once per part of the tables that have one (quality, memorisation)
    with_floor = parts + text.count("Memorisation")
    assert parts >= 1 and sum(1 for x in text.splitlines() if x.startswith("real data (floor)")) == with_floor
    for title in ("FID ↓", "precision ↑", "recall ↑", "images/s ↑", "NFE ↓", "KID"):
        assert title in text, title
    for internal in ("images_per_second", "confident_share", "fid_floor", "NaN", "e+0"):
        assert internal not in text, internal
    assert "data entropy (floor)" not in text  # digits has no known entropy: no such row


def test_column_chunks_fill_the_width_and_keep_at_least_one_column():
    from genbench.report.formatting import Shown

    header = ["model", "sampler", "seeds", "a", "b", "c"]
    body = [[Shown("m" * 10), Shown("s" * 5), Shown("3"), Shown("x" * 10), Shown("y" * 10), Shown("z" * 10)]]
    # labels 10 + 7 (sampler) + 5 (seeds) + 2 gaps of 3 = 28; each value column 10 + 3
    assert column_chunks(header, body, 28 + 13 * 3) == [[3, 4, 5]]
    assert column_chunks(header, body, 28 + 13 * 3 - 1) == [[3, 4], [5]]
    assert column_chunks(header, body, 10) == [[3], [4], [5]]


def test_nothing_to_show_prints_nothing():
    assert summary_text([], REGISTRY) == ""
