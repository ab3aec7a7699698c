"""Browser end-to-end suite (issue 9): the real app in Debian's headless Chromium. Open every page
app.py lists, through the sidebar, and fail on any exception box; run one prediction on Predict,
one explanation on Explain and one short training on Train. Page actions: tests/e2e/actions.py.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
async_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

PAGES = act.app_pages()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = act.free_port()
    proc = act.start_server(port, {"KARP_RUNS": str(tmp_path_factory.mktemp("runs")),
                                   "KARP_JOB_GRACE": "5", "KARP_TEACHER_PASSWORD": None})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        act.stop_server(proc)


def in_browser(base: str, steps) -> None:
    """Run `await steps(page)` in a fresh browser page opened on the app's home."""
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await act.open_app(page, base)
                await steps(page)
            finally:
                await browser.close()
    asyncio.run(main())


def test_app_lists_pages():
    assert len(PAGES) >= 5 and ("pages/home.py", "Home") in PAGES


def test_every_page_opens_without_an_exception(server):
    problems: dict[str, list[str]] = {}

    async def walk(page):
        assert await page.get_by_text("Runs on").count() > 0  # app.py's device badge: it ran
        for file, title in PAGES:
            await act.go(page, title, timeout_s=120)
            errors = await act.exceptions(page)
            if errors:
                problems[title] = errors
            elif await page.locator("h1").count() == 0:
                problems[title] = ["no title on the page"]

    in_browser(server, walk)
    assert not problems, problems


def test_one_prediction(server):
    async def steps(page):
        await act.go(page, "Predict and look inside", timeout_s=120)
        t = await act.predict(page, timeout_s=120)
        print(f"prediction answered {t.answered} s and drawn {t.drawn:.2f} s after the click")
        assert await act.exceptions(page) == []

    in_browser(server, steps)


def test_one_explanation(server):
    async def steps(page):
        await act.go(page, "Explain", timeout_s=120)
        t = await act.explain(page, timeout_s=180)
        print(f"explanation answered {t.answered} s and drawn {t.drawn:.2f} s after the input")
        assert await act.exceptions(page) == []

    in_browser(server, steps)


def test_one_short_training(server):
    async def steps(page):
        await act.go(page, "Train")
        await act.start_training(page, dataset="digits", steps=40)
        state = ""
        for _ in range(240):  # a 40-step run on 8x8 digits: seconds, even on a busy CPU
            state = await act.training_state(page)
            if state in ("done", "failed"):
                break
            await asyncio.sleep(0.5)
        assert state == "done", state
        assert await act.exceptions(page) == []

    in_browser(server, steps)
