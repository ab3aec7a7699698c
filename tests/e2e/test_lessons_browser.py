"""Guided lessons (issue 24) in Debian's headless Chromium against the real app: two students join class
7B on the Lessons page, play the GPT-attention lesson from its first step to its last, answer its
questions and see the live model grade them; the teacher's switch shows both answers, counted without
names."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
async_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = act.free_port()
    proc = act.start_server(port, {"KARP_RUNS": str(tmp_path_factory.mktemp("runs")),
                                   "KARP_TEACHER_PASSWORD": None})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        act.stop_server(proc)


async def click(tab, name: str, timeout_s: float = 90) -> None:
    await tab.get_by_role("button", name=name).first.click()
    await act.wait_idle(tab, timeout_s)


async def join_and_start(tab, code: str, lesson: str) -> None:
    """Type the class code on the Lessons page and start lesson (its id)."""
    await act.go(tab, "Lessons")
    box = tab.get_by_label("Class code", exact=True)
    await box.fill(code)
    await box.press("Enter")
    await act.wait_idle(tab)
    await tab.locator(f".st-key-lesson_card_{lesson}").get_by_role("button", name="Start this lesson").click()
    await act.wait_idle(tab)
    await tab.get_by_text("· step 1 of").wait_for(timeout=60_000)
    await tab.wait_for_url(lambda url: "/lessons" not in url, timeout=30_000)


async def answer_char(tab, char: str) -> str:
    await tab.get_by_role("textbox", name="The next character (a space counts too)").fill(char)
    await tab.get_by_role("textbox", name="The next character (a space counts too)").press("Enter")
    await act.wait_idle(tab)
    await click(tab, "Check my answer")
    verdict = tab.get_by_text("The model gives your")
    await verdict.wait_for(timeout=60_000)
    return await verdict.inner_text()


def test_two_students_play_a_lesson_and_the_teacher_sees_both_answers(server):
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                tabs = []
                for _ in range(2):
                    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=act.LOCALE)
                    tab = await context.new_page()
                    await act.open_app(tab, server)
                    await join_and_start(tab, "7b", "attention")
                    tabs.append(tab)
                teacher, student = tabs

                # step 1 of 3: the Generate text page in the lesson's state, beside the step
                for tab in tabs:
                    assert "/generate" in tab.url and "lesson=attention" in tab.url and "lesson_step=1" in tab.url
                    await tab.get_by_text("Lesson: Attention in a GPT · step 1 of 3").wait_for()
                    assert await tab.get_by_text("gpt trained on shakespeare").count() >= 1
                right = await answer_char(teacher, "e")
                wrong = await answer_char(student, "r")
                assert "✓ right" in await teacher.locator("body").inner_text()
                assert "its first choice is e" in right.replace("*", "")
                assert "✗ wrong" in await student.locator("body").inner_text() and "your r" in wrong.replace("*", "")

                # the teacher's view: both answers, counted, without names
                await teacher.get_by_text("Teacher: show the class's answers").click()
                await act.wait_idle(teacher)
                await teacher.get_by_text("2 answers from class 7B").wait_for(timeout=15_000)
                chart = teacher.locator("[class*='st-key-lesson_tally_attention_0'] .js-plotly-plot")
                await chart.wait_for(timeout=15_000)
                bars = await chart.evaluate(
                    "el => el.data[0].x.map((x, i) => [x, el.data[0].y[i]])")
                assert sorted(map(tuple, bars)) == [("e", 1), ("r", 1)]

                # the rest of the lesson: next, next, an ablation question, finish
                tab = student
                await click(tab, "Next")
                assert "/text_attention" in tab.url and "lesson_step=2" in tab.url
                await tab.get_by_text("step 2 of 3").wait_for()
                await click(tab, "Back")
                await tab.get_by_text("step 1 of 3").wait_for()
                await click(tab, "Next")
                await click(tab, "Next")
                assert "/intervene" in tab.url and "lesson_step=3" in tab.url
                await tab.get_by_text("Which head matters most for closing quotes?").wait_for()
                await tab.get_by_role("combobox", name="Layer.head").click()
                await tab.get_by_role("option", name="layer 3, head 3").click()
                await act.wait_idle(tab)
                await click(tab, "Check my answer")
                verdict = tab.get_by_text("hurts closing quotes most")
                await verdict.wait_for(timeout=90_000)
                text = await verdict.inner_text()
                assert "Your head ranks 1 of 16" in text and "✓ right" in text
                assert not await act.exceptions(tab)
                await click(tab, "Finish")                  # ends the lesson where it is, as Leave does
                assert "lesson=" not in tab.url and "/intervene" in tab.url
                assert await tab.get_by_text("step 3 of 3").count() == 0
                assert not await act.exceptions(teacher)
            finally:
                await browser.close()
    asyncio.run(main())


def test_the_recipe_lesson_moves_between_steps_on_one_page_and_a_short_run_grades_the_learning_rate(server):
    """Four steps on Train: Next must set the page's widgets itself (Streamlit refuses link parameters bound
    to a widget of the page shown); the last step's answer comes from a real 30-step run; presentation mode."""
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=act.LOCALE)
                tab = await context.new_page()
                await act.open_app(tab, server)
                await join_and_start(tab, "", "recipe")
                await act.presentation_mode(tab)
                for step in (2, 3, 4):
                    await click(tab, "Next")
                    assert "/train" in tab.url and f"lesson_step={step}" in tab.url
                    await tab.get_by_text(f"step {step} of 4").wait_for()
                    assert not await act.exceptions(tab)
                assert "train_lr=0.1" in tab.url
                slider = tab.get_by_test_id("stSlider").filter(has_text="Learning rate")
                assert "0.1" in await slider.inner_text()          # the step's state reached the widget
                await tab.get_by_text("No, it does not").click()
                await act.wait_idle(tab)
                await click(tab, "Check my answer", 180)
                verdict = tab.get_by_text("A real run of")
                await verdict.wait_for(timeout=180_000)
                assert "blew up" in await verdict.inner_text()
                assert "✓ right" in await tab.locator("body").inner_text()
                assert not await act.exceptions(tab)
                problems = await act.layout_problems(tab)
                assert not problems, problems                     # the step beside the page fits, enlarged
            finally:
                await browser.close()
    asyncio.run(main())


SCROLL_DOWN = """() => document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')
    .forEach(el => el.scrollTo(0, 5000))"""
SCROLLED = """() => Math.max(window.scrollY, ...Array.from(document.querySelectorAll(
    '[data-testid="stMain"], [data-testid="stAppViewContainer"]')).map(el => el.scrollTop))"""


async def presented(tab) -> tuple[str, bool]:
    """The page's root font size and whether the sidebar is shown."""
    return await tab.evaluate("""() => [getComputedStyle(document.documentElement).fontSize,
        !!Array.from(document.querySelectorAll('section[data-testid="stSidebar"]'))
            .some(s => getComputedStyle(s).display !== 'none')]""")


def test_presentation_mode_survives_every_page_switch_of_the_lesson_player(server):
    """Start (Lessons -> Predict), Next on one page, Next to Explain, Back to Predict: each keeps the
    projector's 20 px root and the hidden page list, and the switch in the top bar stays on."""
    async def main():
        async with async_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=act.LOCALE)
                tab = await context.new_page()
                await act.open_app(tab, server)
                await act.go(tab, "Lessons")
                await act.presentation_mode(tab)
                assert (await presented(tab))[0] == "20px"
                await tab.locator(".st-key-lesson_card_convolution").get_by_role(
                    "button", name="Start this lesson").click()
                await act.wait_idle(tab)
                await tab.get_by_text("· step 1 of").wait_for(timeout=60_000)
                for move, page, step in (("", "/predict", 1), ("Next", "/predict", 2), ("Next", "/explain", 3), ("Back", "/predict", 2)):
                    if move:
                        await tab.evaluate(SCROLL_DOWN)
                        await click(tab, move)
                    await tab.get_by_text(f"step {step} of").wait_for(timeout=60_000)
                    await act.wait_idle(tab)
                    assert page in tab.url, (move, tab.url)
                    assert tuple(await presented(tab)) == ("20px", False), (move, page, step)
                    assert await tab.locator(".st-key-karp_present input").is_checked()
                    await asyncio.sleep(3.5)
                    assert await tab.evaluate(SCROLLED) == 0, (move, page, step)     # the step from its top
                    assert not await act.exceptions(tab)
            finally:
                await browser.close()
    asyncio.run(main())
