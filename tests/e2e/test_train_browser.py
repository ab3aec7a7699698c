"""Browser test: the real app in headless Chromium; start a short run on the Train page and see the
loss chart gain points while it trains. (Playwright's sync API, launched as
../shared/tools/snap.py does.)
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = act.free_port()
    proc = act.start_server(port, {"KARP_RUNS": str(tmp_path_factory.mktemp("runs"))}, timeout_s=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        act.stop_server(proc)


# --- the test

POINTS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot'))
  .map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0))"""


def wait_idle(page, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    while time.time() < deadline:
        if page.get_attribute("[data-testid='stApp']", "data-test-script-state") == "notRunning":
            return
        time.sleep(0.2)


def test_start_a_run_and_watch_the_chart_grow(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale=act.LOCALE)
            # in through the home page and the sidebar, as a person does (a deep link to /train
            # on a fresh server shows the bare pages/ file until app.py has run once)
            page.goto(server + "/", timeout=60_000)
            wait_idle(page)
            page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Train").click()
            page.wait_for_url(re.compile(r"/train(\?|$)"), timeout=30_000)   # the address keeps ?lang=
            wait_idle(page)
            page.get_by_role("heading", name="Train").first.wait_for(timeout=30_000)
            assert page.get_by_text("Runs on").count() > 0  # app.py's device badge: navigation ran
            assert page.locator("[data-testid='stException']").count() == 0
            # the small digits set (8x8 images): the curve moves within seconds
            page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").click()
            page.get_by_role("option", name="digits").click()
            wait_idle(page)
            page.get_by_role("button", name="Start training").click()
            t_click = time.time()

            def loss_points() -> int:
                counts = page.evaluate(POINTS_JS)
                return counts[0] if counts else 0

            t0 = time.time()
            first = 0
            while first == 0:
                assert time.time() - t0 < 40, "no points on the loss chart after 40 s"
                time.sleep(0.5)
                first = loss_points()
            print(f"first points on the loss chart {time.time() - t_click:.1f} s after Start")
            later = first
            while later <= first:
                assert time.time() - t0 < 60, f"the chart stayed at {first} points"
                time.sleep(0.5)
                later = loss_points()
            print(f"{later} points after {time.time() - t_click:.1f} s")
            assert page.locator("[data-testid='stException']").count() == 0
            # (stop, resume and save are covered by the AppTest; the server is killed next)
        finally:
            browser.close()
