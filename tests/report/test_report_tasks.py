"""The report's task section: leaderboards from task rows, "not supported" shown as such, the truth row."""
from __future__ import annotations

import json
import math

import pandas as pd

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
