"""A fresh server whose first visitor opens a page link (a teacher's shared URL) shows app.py's
grouped navigation, not Streamlit's list of pages/ files, and runs app.py (its device badge)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from actions import CHROMIUM, CHROMIUM_ARGS, LOCALE, free_port, start_server, stop_server  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def test_a_page_link_as_first_visit_gets_the_app_navigation():
    port = free_port()
    proc = start_server(port)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(locale=LOCALE)
            page.goto(f"http://localhost:{port}/vit_attention", timeout=90_000)
            page.get_by_role("heading", name="ViT attention").wait_for(timeout=90_000)
            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_text("Predict and look inside").wait_for(timeout=30_000)
            assert nav.get_by_text("vit attention", exact=True).count() == 0  # a file name
            assert page.get_by_text("Runs on").count() >= 1                   # app.py's badge
            browser.close()
    finally:
        stop_server(proc)
