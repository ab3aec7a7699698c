"""A teacher's screen (issue 16), in Debian's headless Chromium against the real app:

- every page fits a 1280x720 projector and a 1920x1080 screen, with and without presentation
  mode: no text cut off or spilling out of its box, nothing past its column, no chart wider than
  its column or with a label outside it (actions.LAYOUT_JS names each offender);
- after Start on Train the live run is in view, and after Save its buttons open the run in the
  other pages;
- an uploaded photo is still there after a visit to Explain;
- a page's address is a link that reproduces the view in a fresh browser.
"""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
async_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

PAGES = act.app_pages()
SCREENS = {"1280x720": (1280, 720), "1920x1080": (1920, 1080)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = act.free_port()
    proc = act.start_server(port, {"KARP_RUNS": str(tmp_path_factory.mktemp("runs")),
                                   "KARP_JOB_GRACE": "5", "KARP_TEACHER_PASSWORD": None})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        act.stop_server(proc)


def in_browser(base: str, steps, size=(1280, 720), pages: int = 1) -> None:
    """Run `await steps(*tabs)` with `pages` fresh browser contexts (separate sessions), each
    opened on the app's home at `size`."""
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                tabs = []
                for _ in range(pages):
                    context = await browser.new_context(viewport={"width": size[0], "height": size[1]},
                                                        locale=act.LOCALE)
                    tab = await context.new_page()
                    await act.open_app(tab, base)
                    tabs.append(tab)
                await steps(*tabs)
            finally:
                await browser.close()
    asyncio.run(main())


# --- every page, two screens, with and without presentation mode


REACH_JS = """() => {
    const out = [];
    const sw = document.querySelector('.st-key-karp_present');
    const r = sw && sw.getBoundingClientRect();
    if (!r || r.top < 0 || r.bottom > innerHeight || r.right > innerWidth) out.push('presentation switch out of view');
    for (const box of document.querySelectorAll('[data-testid="stMultiSelectTagsContainer"]')) {
        const b = box.getBoundingClientRect();
        if (!b.width) continue;                                  // a hidden tab
        for (const tag of box.querySelectorAll('[data-tag]')) {
            const t = tag.getBoundingClientRect();
            if (t.left < b.left - 1 || t.right > b.right + 1 || t.bottom > b.bottom + 1)
                out.push('multiselect chip out of sight: ' + tag.textContent);
        }
    }
    return out;
}"""


async def out_of_reach(page) -> list[str]:
    """The presentation-mode switch out of view, or a chosen option's chip clipped from sight."""
    return await page.evaluate(REACH_JS)


@pytest.mark.parametrize("present", [False, True], ids=["normal", "presentation"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_fits_the_screen(server, screen, present):
    problems: dict[str, list[str]] = {}

    async def walk(page):
        await act.presentation_mode(page, present)
        for _, title in PAGES:
            await act.go(page, title, timeout_s=120)
            await act.settle(page)
            found = (await act.layout_problems(page) + await act.exceptions(page)
                     + await out_of_reach(page))
            if found:
                problems[title] = found

    in_browser(server, walk, SCREENS[screen])
    assert not problems, problems


def test_the_checker_finds_what_does_not_fit(server):
    """The layout check itself: text cut off, an element past its column and a chart label
    outside its chart are each reported."""
    async def steps(page):
        await act.go(page, "Home")
        await act.settle(page)
        assert await act.layout_problems(page) == []
        await page.evaluate("""() => {
            const p = document.querySelector('[data-testid="stMainBlockContainer"] h1');
            p.style.whiteSpace = 'nowrap'; p.style.overflow = 'hidden'; p.style.width = '120px';
            const wide = document.createElement('div');
            wide.style.width = '5000px'; wide.textContent = 'wide';
            document.querySelector('[data-testid="stMainBlockContainer"]').appendChild(wide);
        }""")
        found = await act.layout_problems(page)
        assert any("text overflows" in f and "karp: look inside" in f for f in found), found
        assert any("sticks out" in f and "wide" in f for f in found), found
        await act.go(page, "Datasets")
        await act.settle(page)
        await page.evaluate("""() => {
            const t = document.querySelector('[data-testid="stPlotlyChart"] .main-svg text.gtitle');
            t.setAttribute('y', '-40');
        }""")
        found = await act.layout_problems(page)
        assert any("chart label outside" in f for f in found), found

    in_browser(server, steps)


# --- Train: the live run in view, Save opens the run elsewhere


def test_after_start_the_run_is_in_view_and_save_opens_it_elsewhere(server):
    async def steps(page):
        await act.go(page, "Train")
        await act.start_training(page, dataset="digits", steps=40)
        chart = page.get_by_test_id("stPlotlyChart").first
        await chart.wait_for(timeout=60_000)
        await asyncio.sleep(2.5)                                     # the scroll repeats for 2 s
        box = await chart.bounding_box()
        assert box["y"] >= 0 and box["y"] + 100 < 720, f"the loss chart is at {box} of a 720 px screen"
        bar = await page.get_by_test_id("stProgress").first.bounding_box()
        assert 0 <= bar["y"] < 720, bar
        assert await act.layout_problems(page) == []                # during the run, too
        for _ in range(240):
            if await act.training_state(page) in ("done", "failed"):
                break
            await asyncio.sleep(0.5)
        assert await act.training_state(page) == "done"
        await page.get_by_role("button", name="Save", exact=True).click()
        name = page.get_by_label("Save this run as")
        await name.fill("class-run")
        await page.get_by_role("button", name="Save run").click()
        await act.wait_idle(page, 120)
        link = page.get_by_role("link", name="Open in Explain")
        await link.first.wait_for(timeout=60_000)
        assert not await page.get_by_test_id("stPopoverBody").is_visible()   # Save's popover closed
        assert await page.get_by_role("link", name="Open in Predict").count() >= 1
        assert await page.get_by_role("link", name="Open in Evaluate").count() >= 1
        await link.first.click()
        await act.wait_idle(page, 120)
        await page.get_by_role("heading", name="Explain a prediction").wait_for(timeout=60_000)
        picker = page.get_by_test_id("stSelectbox").filter(has_text="Model").first
        assert await picker.locator("input").input_value() == "class-run"
        assert "explain_model=class-run" in page.url
        assert await act.exceptions(page) == []

    in_browser(server, steps)


# --- an upload survives a visit to another page


def test_an_uploaded_photo_is_still_there_after_explain(server, tmp_path):
    from PIL import Image

    photo = tmp_path / "my-sneaker.png"
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[24:44, 8:56] = 230                                           # a light shoe-ish bar on black
    Image.fromarray(rgb).save(photo)

    async def steps(page):
        await act.go(page, "Predict and look inside", timeout_s=120)
        await page.get_by_test_id("stRadio").filter(has_text="Image from").get_by_text("Upload").click()
        await act.wait_idle(page)
        await page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(photo))
        await page.get_by_role("heading", name=act.PERCENT).first.wait_for(timeout=60_000)
        await act.settle(page)
        await act.go(page, "Explain", timeout_s=120)
        await page.get_by_text("upload: my-sneaker.png").first.wait_for(timeout=60_000)  # the shared image
        await act.go(page, "Predict and look inside", timeout_s=120)
        await act.settle(page)
        assert await page.get_by_text("Showing my-sneaker.png, uploaded earlier").count() == 1
        assert await page.get_by_role("heading", name=act.PERCENT).count() >= 1  # its prediction
        assert await page.get_by_text("File: PNG, 64 x 64 pixels").count() == 1  # its pipeline
        assert await act.exceptions(page) == []

    in_browser(server, steps)


# --- a link reproduces the view


def test_a_link_opens_the_same_view_in_a_fresh_browser(server):
    typed = "To be, or not to be: that is the question."

    async def steps(teacher, student):
        await act.go(teacher, "Explain", timeout_s=120)
        picker = teacher.get_by_test_id("stSelectbox").filter(has_text="Model").first
        await picker.click()
        await teacher.get_by_role("option", name="classic-fashion-mnist", exact=True).click()
        await act.wait_idle(teacher, 120)
        box = teacher.get_by_label(re.compile("Test image number"))
        await box.fill("7")
        await box.press("Enter")
        await teacher.get_by_text("test image #7").first.wait_for(timeout=120_000)
        await teacher.get_by_role("tab", name="Sanity check").click()
        await act.wait_idle(teacher)
        link = teacher.url
        assert "explain_model=classic-fashion-mnist" in link and "explain_test_index=7" in link

        await student.goto(link)
        await act.wait_idle(student, 120)
        await student.get_by_text("test image #7").first.wait_for(timeout=120_000)
        picker = student.get_by_test_id("stSelectbox").filter(has_text="Model").first
        await async_api.expect(picker.locator("input")).to_have_value("classic-fashion-mnist", timeout=60_000)
        assert await student.get_by_role("tab", name="Sanity check", selected=True).count() == 1

        await act.go(teacher, "GPT attention", timeout_s=120)
        text = teacher.get_by_label("Text")
        await text.fill(typed)
        await text.press("Control+Enter")
        await act.wait_idle(teacher, 120)
        await student.goto(teacher.url)
        await act.wait_idle(student, 120)
        # a fresh page reports "not running" before its first run begins: wait for the value itself
        await async_api.expect(student.get_by_label("Text")).to_have_value(typed, timeout=60_000)
        # and the teacher's own text survives a visit to another page
        await act.go(teacher, "Home")
        await act.go(teacher, "GPT attention", timeout_s=120)
        await async_api.expect(teacher.get_by_label("Text")).to_have_value(typed, timeout=60_000)
        assert await act.exceptions(student) == [] and await act.exceptions(teacher) == []

    in_browser(server, steps, pages=2)
