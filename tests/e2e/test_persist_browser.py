"""Browser test (issue 18): the real app in headless Chromium. Start a run on the Train page,
refresh the tab and find the run still training; another browser does not see it. Then kill the
server process with SIGKILL in the middle of the run, start it again on the same runs folder,
and find the run interrupted at its last autosave (checked against the file), with no damaged
file; Resume continues the same curve from there.

Autosaves every 2 s (KARP_AUTOSAVE_S) so the test waits seconds, not the default 30.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

POINTS_JS = """() => { const g = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  return g && g.data && g.data[0] ? Array.from(g.data[0].x) : []; }"""


def wait_idle(page, timeout_s: float = 90) -> None:
    deadline = time.time() + timeout_s
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    while time.time() < deadline:
        if page.get_attribute("[data-testid='stApp']", "data-test-script-state") == "notRunning":
            return
        time.sleep(0.2)
    raise TimeoutError("the page kept running")


def open_train(page, base: str) -> None:
    """In through the home page and the sidebar, as a person does."""
    page.goto(base + "/", timeout=90_000)
    wait_idle(page)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Train").click()
    page.wait_for_url(re.compile(r"/train(\?|$)"), timeout=60_000)   # the address keeps ?lang=
    wait_idle(page)
    page.get_by_role("heading", name="Train").first.wait_for(timeout=60_000)


def progress(page) -> tuple[str, int]:
    """(state word, step) from the run's progress text; ('', -1) when there is none."""
    bar = page.locator("[data-testid='stProgress']")
    if bar.count() == 0:
        return "", -1
    text = bar.first.inner_text()
    m = re.search(r"(\w+) · step ([\d,]+)", text)
    return (m.group(1).lower(), int(m.group(2).replace(",", ""))) if m else ("", -1)


def until(fn, timeout_s: float, what: str):
    t0 = time.time()
    while not (out := fn()):
        assert time.time() - t0 < timeout_s, f"{what} after {timeout_s:.0f} s"
        time.sleep(0.5)
    return out


T0 = time.time()


def mark(what: str) -> None:
    print(f"{time.time() - T0:6.1f} s  {what}", flush=True)


def no_exception(page) -> None:
    boxes = page.locator(act.EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def test_refresh_and_server_kill_lose_nothing(tmp_path):
    from karp_models.train import workspace as ws
    from karp_models.train.checkpoints import load_checkpoint, read_trainer_summary

    runs = tmp_path / "runs"
    env = {"KARP_RUNS": str(runs), "KARP_AUTOSAVE_S": "2", "KARP_THREADS": "1",
           "KARP_TEACHER_PASSWORD": None}
    port = act.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = act.start_server(port, env, timeout_s=90)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale=act.LOCALE)
            page = ctx.new_page()
            open_train(page, base)
            mark("train page open")
            page.goto(f"{base}/train?train_dataset=digits&train_steps=5000")  # the page's link
            wait_idle(page)
            page.get_by_role("button", name="Start training").click()
            mark("start clicked")
            until(lambda: progress(page)[0] == "running" and progress(page)[1] >= 20, 90,
                  "the run did not reach step 20")
            assert any(c["name"] == "karp_work" for c in ctx.cookies())  # the browser's work id

            mark("step 20")
            # --- F5: the same browser finds its run, still training; another browser does not
            page.reload()
            wait_idle(page)
            state, at = until(lambda: progress(page)[1] > 0 and progress(page), 60,
                              "no run on the page after the refresh")
            assert state == "running", state
            no_exception(page)
            other = browser.new_context(viewport={"width": 1280, "height": 900}, locale=act.LOCALE).new_page()
            other.goto(f"{base}/train")
            wait_idle(other)
            other.get_by_role("heading", name="Train").first.wait_for(timeout=60_000)
            assert other.get_by_text("No runs yet").count() == 1 and progress(other) == ("", -1)
            mark("other browser checked")
            other.context.close()

            # --- the server is killed in the middle of the run, after an autosave
            until(lambda: page.get_by_text(re.compile(r"Autosaved at step")).count(), 60,
                  "no autosave shown")
            mark("autosave seen, kill")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            (auto,) = (runs / ws.WORK).glob(f"*/{ws.AUTOSAVE}/*.safetensors")
            saved_at = read_trainer_summary(auto)["step"]
            assert saved_at > 0 and load_checkpoint(auto).model_name == "fast"
            assert not list(runs.glob("*.safetensors"))       # nothing was saved by name

            proc = act.start_server(port, env, timeout_s=90)   # the restarted server
            mark("restarted")
            open_train(page, base)
            page.get_by_text(re.compile(f"Interrupted at step {saved_at:,}")).wait_for(
                timeout=60_000)
            assert progress(page) == ("stopped", saved_at)
            before = page.evaluate(POINTS_JS)
            assert before and before[-1] == saved_at            # the curve up to the autosave
            no_exception(page)

            mark("recovered view checked")
            page.get_by_role("button", name="Resume").click()
            until(lambda: progress(page)[0] == "running" and progress(page)[1] > saved_at + 20,
                  90, "the resumed run did not go on")
            after = until(lambda: (x := page.evaluate(POINTS_JS)) and x[-1] > saved_at and x, 30,
                          "the chart did not go on")
            assert after[:len(before)] == before                # one curve, continued
            assert after == sorted(set(after))
            no_exception(page)
            mark("resumed")
            page.get_by_role("button", name="Stop").click()
            until(lambda: progress(page)[0] == "stopped", 60, "the run did not stop")
            browser.close()
    finally:
        act.stop_server(proc)
