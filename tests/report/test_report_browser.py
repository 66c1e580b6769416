"""The page in a real browser (headless Chromium via selenium and chromedriver).

Proves: it renders (a screenshot is taken and is not blank), makes no network
request, logs no console error, every image decodes, the leaderboard has a row per
model, a hostile model name runs no script, nothing overflows a laptop-wide window,
and it prints to PDF.  Set GENBENCH_SCREENSHOT_DIR to keep the screenshot and PDF.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from report_fakes import HOSTILE, MODELS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)
WIDTH, HEIGHT = 1366, 768  # a common laptop screen


@pytest.fixture(scope="module")
def page(demo_report: Path):
    """The loaded page: (driver, page URL, performance log, browser log)."""
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--disable-sync", "--disable-extensions", f"--window-size={WIDTH},{HEIGHT}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };")})
        url = demo_report.resolve().as_uri()
        driver.get(url)
        driver.execute_script("return document.fonts ? document.fonts.ready : null")
        yield driver, url, driver.get_log("performance"), driver.get_log("browser")
    finally:
        driver.quit()


def test_screenshot_is_taken_and_shows_the_page(page, tmp_path: Path) -> None:
    from PIL import Image

    driver = page[0]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(full) + 100, 12000))
    png = driver.get_screenshot_as_png()
    driver.set_window_size(WIDTH, HEIGHT)
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size[0] >= WIDTH - 20 and image.size[1] > 2 * HEIGHT
    histogram = image.histogram()
    assert max(histogram) < 0.97 * sum(histogram), "the screenshot is (almost) one colour"
    keep = os.environ.get("GENBENCH_SCREENSHOT_DIR")
    target = Path(keep) if keep else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    (target / "report.png").write_bytes(png)


def test_no_network_request(page) -> None:
    _, url, perf, _ = page
    requests = [json.loads(e["message"])["message"] for e in perf]
    urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    assert url in urls  # the log works: the page itself was seen
    outside = [u for u in urls if u != url and not u.startswith("data:")]
    assert outside == []
    assert not [m for m in requests if m["method"] in ("Network.webSocketCreated", "Network.eventSourceMessageReceived")]


def test_no_console_error(page) -> None:
    _, _, _, console = page
    assert [e for e in console if e["level"] in ("SEVERE", "ERROR")] == []


def test_every_image_decodes(page, demo_report: Path) -> None:
    driver = page[0]
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt]);")
    assert len(images) == demo_report.read_text().count("<img ")
    assert len(images) >= 2 * len(MODELS)  # sample grids, real grids, curves, cost plot
    bad = [i for i in images if not (i[0] and i[1] > 0 and i[2] > 0)]
    assert bad == []


def test_leaderboard_has_a_row_per_model(page) -> None:
    driver = page[0]
    names = driver.execute_script("""
        const t = document.querySelector('table.board[data-table="quality"]');
        return Array.from(t.querySelectorAll('td.name')).map(td => td.firstChild.textContent);""")
    assert sorted(names) == sorted([*MODELS, HOSTILE, "real data (floor)"])
    best = driver.execute_script("""
        const t = document.querySelector('table.board[data-table="quality"]');
        return Array.from(t.querySelectorAll('td.best')).length;""")
    assert best >= 1


def test_hostile_name_is_text_and_runs_nothing(page) -> None:
    driver = page[0]
    assert driver.execute_script("return window.__alerts") == []
    assert driver.execute_script("return document.scripts.length") == 0
    texts = driver.execute_script("return Array.from(document.querySelectorAll('td.name')).map(td => td.textContent)")
    assert any(HOSTILE in t for t in texts)
    assert driver.execute_script("return document.querySelectorAll('img[onerror], [onload], [onclick]').length") == 0


def test_fits_a_laptop_window_and_prints(page, tmp_path: Path) -> None:
    driver = page[0]
    driver.set_window_size(WIDTH, HEIGHT)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the page scrolls sideways; wide tables must scroll in their own box"
    pdf = base64.b64decode(driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})["data"])
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert 2 <= pages <= 40, pages
    keep = os.environ.get("GENBENCH_SCREENSHOT_DIR")
    (Path(keep) if keep else tmp_path).joinpath("report.pdf").write_bytes(pdf)
