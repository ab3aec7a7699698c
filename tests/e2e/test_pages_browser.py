"""Browser end-to-end suite (issue 9): the real app in Debian's headless Chromium. Open every page
app.py lists, through the sidebar, and fail on any exception box; run one prediction on Predict,
one explanation on Explain and one short training on Train; all in an English browser
(act.LOCALE). And a Chinese browser: the app opens in Chinese, drawn in a CJK font, never boxes.
Page actions: tests/e2e/actions.py.
"""
from __future__ import annotations

import asyncio
import re
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


def in_browser(base: str, steps, locale: str = act.LOCALE) -> None:
    """Run `await steps(page)` in a fresh browser page, whose language is `locale`, opened on the
    app's home."""
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale=locale)
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
        await page.get_by_text("Runs on").first.wait_for(state="attached", timeout=60_000)  # app.py's device badge: it ran
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


CJK = re.compile(r"[\u4e00-\u9fff]")


async def fonts_drawing(page, selector: str) -> tuple[str, dict[str, int]]:
    """The text of the first element matching `selector`, and the fonts Chromium drew its glyphs
    with ({family: glyphs}; DevTools' CSS.getPlatformFontsForNode)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = (await cdp.send("DOM.getDocument", {"depth": 0}))["root"]["nodeId"]
    node = (await cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector}))["nodeId"]
    assert node, f"nothing matches {selector}"
    fonts = (await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node}))["fonts"]
    text = await page.locator(selector).first.text_content()
    return text, {f["familyName"]: f["glyphCount"] for f in fonts}


def test_a_chinese_browser_gets_the_app_in_chinese_drawn_in_a_cjk_font(server):
    """A browser whose language is Chinese opens the app in Chinese (st.context.locale) and the
    address keeps ?lang=zh; the Chinese of the page and of a chart is drawn in a CJK font (Debian's
    fonts-noto-cjk), glyph for glyph, never boxes."""
    seen = {}

    async def steps(page):
        title = page.get_by_role("heading", level=1).first
        await title.wait_for(timeout=60_000)
        assert CJK.search(await title.text_content())
        assert "lang=zh" in page.url
        seen["title"] = await fonts_drawing(page, "h1")
        await act.go(page, "数据集", timeout_s=120)                      # Datasets: class names on a chart
        await page.locator(".js-plotly-plot svg text").first.wait_for(timeout=60_000)
        await page.evaluate("""() => {
            const t = [...document.querySelectorAll('.js-plotly-plot svg text')]
                .find(e => /[\u4e00-\u9fff]/.test(e.textContent));
            if (t) t.setAttribute('data-karp-probe', '1');
        }""")
        seen["chart"] = await fonts_drawing(page, "[data-karp-probe]")
        assert await act.exceptions(page) == []

    in_browser(server, steps, locale="zh-CN")
    print(seen)
    for where, (text, fonts) in seen.items():
        cjk_glyphs = sum(n for family, n in fonts.items() if "CJK" in family)
        assert cjk_glyphs >= len(CJK.findall(text)) > 0, (where, text, fonts)
