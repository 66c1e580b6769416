"""The report's task section: leaderboards from task rows, "not supported" shown as such, the truth row."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from genbench.report.tasks import load_task_rows, task_boards, tasks_html, tasks_markdown


def rows(model, seed, values, supported=True, reason=""):
    base = {"model": model, "seed": seed, "dataset": "digits", "task": "inpaint", "mask": "bottom-half",
            "run_id": f"{model}-{seed}", "preset": "quick"}
    out = [{**base, "metric": "supported", "value": 1.0 if supported else 0.0,
            "details": json.dumps({"reason": reason} if reason else {})}]
    out += [{**base, "metric": m, "value": v, "details": "{}"} for m, v in values.items()]
    return out


def test_leaderboard_orders_by_class_agreement_and_says_not_supported(tmp_path):
    data = (rows("a", 0, {"class_agreement": 0.7, "class_agreement_floor": 0.95, "psnr_known": math.inf})
            + rows("a", 1, {"class_agreement": 0.8, "class_agreement_floor": 0.95, "psnr_known": math.inf})
            + rows("b", 0, {"class_agreement": 0.9, "class_agreement_floor": 0.95})
            + rows("c", 0, {}, supported=False, reason="c has no complete()"))
    run = tmp_path / "runs" / "a-0" / "tasks" / "inpaint-bottom-half"
    run.mkdir(parents=True)
    (run / "rows.json").write_text(json.dumps(data))
    frame = load_task_rows([tmp_path / "runs" / "a-0"])
    assert len(frame) == len(data)
    board = task_boards(frame)[("digits", "inpaint", "bottom-half")]
    assert list(board["model"]) == ["truth (reference)", "b", "a", "c"]
    a = board[board["model"] == "a"].iloc[0]
    assert abs(a["class_agreement"] - 0.75) < 1e-12 and a["seeds"] == 2
    assert abs(board[board["model"] == "truth (reference)"].iloc[0]["class_agreement"] - 0.95) < 1e-12
    md = tasks_markdown(frame)
    assert "not supported: c has no complete()" in md and "∞" in md
    html = tasks_html(frame)
    assert "not supported: c has no complete()" in html and 'id="tasks"' in html


def test_no_task_rows_no_section():
    assert tasks_html(pd.DataFrame()) == "" and tasks_markdown(pd.DataFrame()) == ""


def _page(tasks_section: str) -> str:
    from genbench.report.page import PageInputs, render_page

    return render_page(PageInputs(datasets=[], failed=[], runs=[], commands=[], versions=[], extractors=[], data=[],
                                  report_command="genbench report", generated="now", tasks_html=tasks_section))


def _nav(page: str) -> str:
    return page[page.index("<nav"):page.index("</nav>")]


def test_the_nav_links_to_the_task_section_when_there_is_one(tmp_path):
    from genbench.report.tasks import SECTION_ID

    frame = pd.DataFrame(rows("a", 0, {"class_agreement": 0.7}))
    section = tasks_html(frame)
    page = _page(section)
    assert f'<a href="#{SECTION_ID}">Tasks</a>' in _nav(page)
    assert f'<section id="{SECTION_ID}">' in page  # the link has its target
    assert "#tasks" not in _nav(_page(""))  # no task rows: no section, no link


def test_values_carry_their_interval_and_the_retrieval_reference_is_shown():
    base = {"dataset": "digits", "task": "inpaint", "mask": "bottom-half", "preset": "standard", "details": "{}"}
    data = []
    for seed, (agree, se) in enumerate([(0.70, 0.04), (0.80, 0.04)]):
        run = {**base, "model": "a", "seed": seed, "run_id": f"a-{seed}"}
        data += [{**run, "metric": "supported", "value": 1.0, "stderr": None},
                 {**run, "metric": "class_agreement", "value": agree, "stderr": se},
                 {**run, "metric": "class_agreement_retrieval", "value": 0.81, "stderr": 0.039},
                 {**run, "metric": "psnr_unknown_retrieval", "value": 12.5, "stderr": 0.3}]
    board = task_boards(pd.DataFrame(data))[("digits", "inpaint", "bottom-half")]
    assert list(board["model"]) == ["nearest training image (reference)", "a"]
    a = board[board["model"] == "a"].iloc[0]
    # two seeds: the wider of the Student-t interval over seeds and 1.96 x the runs' own standard error / sqrt(2)
    from scipy import stats
    t_half = stats.t.ppf(0.975, 1) * float(np.std([0.7, 0.8], ddof=1)) / math.sqrt(2)
    assert a["class_agreement"] == pytest.approx(0.75) and a["class_agreement_ci"] == pytest.approx(
        max(t_half, 1.959964 * 0.04 / math.sqrt(2)), rel=1e-6)
    ref = board.iloc[0]
    # the reference's rows are one measurement repeated in every cell (a fixed mask: the same images each seed),
    # so its interval is 1.96 of its own standard error, not shrunk by the number of cells
    assert ref["class_agreement"] == pytest.approx(0.81) and ref["class_agreement_ci"] == pytest.approx(
        1.959964 * 0.039, rel=1e-6)
    md = tasks_markdown(pd.DataFrame(data))
    assert "0.75 ± " in md and "nearest training image (reference)" in md and "95% interval" in md


def test_references_are_measured_on_the_images_their_models_restored():
    """Cells that restored 100 and 50 test images (--task-images) each stand beside the truth and retrieval rows
    of their own images; a single number of images keeps the plain reference labels."""
    base = {"dataset": "digits", "task": "inpaint", "mask": "bottom-half", "preset": "standard", "details": "{}",
            "seed": 0, "stderr": None}
    data = []
    for model, n, floor, retrieval in (("a", 100, 0.97, 0.81), ("b", 50, 0.96, 0.82), ("c", 50, 0.96, 0.82)):
        run = {**base, "model": model, "run_id": f"{model}-0"}
        data += [{**run, "metric": "supported", "value": 1.0, "n": n},
                 {**run, "metric": "class_agreement", "value": 0.7, "n": n},
                 {**run, "metric": "class_agreement_floor", "value": floor, "n": n},
                 {**run, "metric": "class_agreement_retrieval", "value": retrieval, "n": n}]
    run = {**base, "model": "d", "run_id": "d-0"}
    data += [{**run, "metric": "supported", "value": 0.0, "n": 0, "details": json.dumps({"reason": "no complete()"})}]
    board = task_boards(pd.DataFrame(data))[("digits", "inpaint", "bottom-half")]
    by_model = board.set_index("model")
    assert by_model.loc["truth (reference, 50 images)", "class_agreement"] == pytest.approx(0.96)
    assert by_model.loc["truth (reference, 100 images)", "class_agreement"] == pytest.approx(0.97)
    assert by_model.loc["nearest training image (reference, 50 images)", "class_agreement"] == pytest.approx(0.82)
    assert by_model.loc["nearest training image (reference, 100 images)", "class_agreement"] == pytest.approx(0.81)
    assert by_model.loc["a", "images"] == "100" and by_model.loc["b", "images"] == "50"
    assert pd.isna(by_model.loc["d", "images"])
    md = tasks_markdown(pd.DataFrame(data))
    assert "| truth (reference, 50 images) | 50 |" in md and "| a | 100 |" in md
    html = tasks_html(pd.DataFrame(data))
    assert "<th>images</th>" in html and "<td>a</td><td>100</td>" in html
    one = task_boards(pd.DataFrame([r for r in data if r["model"] in ("b", "c")]))[("digits", "inpaint",
                                                                                    "bottom-half")]
    assert list(one["model"])[:2] == ["truth (reference)", "nearest training image (reference)"]
    assert one.iloc[0]["images"] == "50"
