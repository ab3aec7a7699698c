"""What a person does in karp, as small Playwright (async API) functions over visible labels:
open the app, go to a page by its sidebar title, predict, explain, train; and what went wrong
(Streamlit's exception boxes). Shared by the browser suite (tests/e2e/test_pages_browser.py)
and the classroom load test (bench/bench_load.py).

Also starts and stops a headless `streamlit run app.py` bound to loopback. Chromium is Debian's
(/usr/bin/chromium through `executable_path`), never Playwright's own download.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
EXCEPTION = "[data-testid='stException']"
# the browser's language: the app opens in it (st.context.locale) and these steps find English
# labels, so every browser is English whatever the machine's language
LOCALE = "en-US"

# --- the app's pages, as app.py lists them


def app_pages(app: Path = ROOT / "app.py") -> list[tuple[str, str]]:
    """(file, English title) of every st.Page in app.py, in order (titles are _("...") msgids)."""
    text = app.read_text()
    return re.findall(r'st\.Page\(\s*"([^"]+)"\s*,\s*title=(?:_\()?"([^"]+)"', text)   # a title may be _("...")


# --- the server


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict[str, str | None] | None = None, timeout_s: float = 90,
                 app_dir: Path = ROOT, poll_s: float = 0.3) -> subprocess.Popen:
    """`streamlit run app.py` headless on 127.0.0.1:port, in app_dir (karp's checkout unless
    told); returns once /_stcore/health answers (asked every poll_s). env: variables to set on
    top of this process's (None: unset it)."""
    streamlit = Path(sys.executable).with_name("streamlit")
    cmd = [str(streamlit) if streamlit.exists() else shutil.which("streamlit"), "run", "app.py",
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           # no file watcher: a server for a class does not reload code, and watching a tree
           # that is being edited (or .venv) costs CPU the sessions need
           "--server.fileWatcherType", "none"]
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    proc = subprocess.Popen(cmd, cwd=app_dir, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited at start in {app_dir}")
        if time.time() > deadline:
            stop_server(proc)
            raise RuntimeError(f"streamlit did not start in {timeout_s:.0f} s")
        time.sleep(poll_s)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children, those started by any of its threads (Linux
    /proc; a Ray cluster's client process is started by a script thread)."""
    total = 0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(k) for k in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


# --- waiting for Streamlit


async def wait_idle(page, timeout_s: float = 60, settle_s: float = 0.25) -> None:
    """Until the script has run: wait briefly for a rerun to begin, then for it to end."""
    app = page.locator("[data-testid='stApp']")
    await app.wait_for(timeout=timeout_s * 1000)
    t0 = time.monotonic()
    while time.monotonic() - t0 < settle_s:  # a click's rerun may take a moment to start
        if await app.get_attribute("data-test-script-state") == "running":
            break
        await asyncio.sleep(0.05)
    while time.monotonic() - t0 < timeout_s:
        if await app.get_attribute("data-test-script-state") == "notRunning":
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the page was still running after {timeout_s:.0f} s")


async def exceptions(page) -> list[str]:
    """The text of every exception box Streamlit shows on the page."""
    boxes = page.locator(EXCEPTION)
    return [(await boxes.nth(i).inner_text())[:500] for i in range(await boxes.count())]


def watch_reruns(page) -> list[float]:
    """Record when each script run's answer has fully arrived from the server (its
    `script_finished` message on the websocket), so a timing can leave out the browser's own
    drawing: on a 2-core machine shared with the browsers that is most of the wait."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    times: list[float] = []

    def on_socket(ws):
        def received(payload):
            if isinstance(payload, (bytes, bytearray)):
                try:
                    msg = ForwardMsg()
                    msg.ParseFromString(bytes(payload))
                except Exception:  # noqa: BLE001 - not a ForwardMsg
                    return
                if msg.WhichOneof("type") == "script_finished":
                    times.append(time.perf_counter())
        ws.on("framereceived", received)

    page.on("websocket", on_socket)
    page._karp_finished = times
    return times


def _answered(page, t0: float) -> float | None:
    later = [t for t in getattr(page, "_karp_finished", []) if t > t0]
    return min(later) - t0 if later else None


@dataclass(frozen=True)
class Timing:
    drawn: float              # seconds from the input until the page showed the answer
    answered: float | None    # ... until the server's answer had arrived (None: not watched)


async def open_app(page, base: str, timeout_s: float = 90) -> None:
    """In through the home page (a deep link on a fresh server skips app.py's navigation)."""
    if not hasattr(page, "_karp_finished"):
        watch_reruns(page)
    await page.goto(base + "/", timeout=timeout_s * 1000)
    await wait_idle(page, timeout_s)


async def go(page, title: str, timeout_s: float = 90) -> None:
    """Click a page's link in the sidebar, as a person does, and wait until it has run."""
    nav = page.get_by_test_id("stSidebarNavItems")
    await nav.get_by_role("link", name=title).first.click(timeout=timeout_s * 1000)
    await wait_idle(page, timeout_s)


async def rerun_done(page, changed, timeout_s: float = 60) -> None:
    """After an input: until Streamlit has rerun the script for it and finished drawing.

    changed: an async () -> bool that becomes true once the answer for the new input is on the
    page (catches a rerun too short to see its 'running' state).
    """
    app = page.locator("[data-testid='stApp']")
    seen_running, t0 = False, time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        state = await app.get_attribute("data-test-script-state")
        if state == "running":
            seen_running = True
        elif state == "notRunning" and (seen_running or await changed()):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no answer {timeout_s:.0f} s after the input")


# --- does the page fit the screen?

# Every visible element with text whose text is wider than its box (cut off, or an ellipsis);
# every element sticking out of its column or of the page's content area (outside a box that
# scrolls by design: code, data grids); every chart wider than its column or with a label
# (tick, title, legend) outside its own drawing area. Each problem names the element.
LAYOUT_JS = r"""
() => {
      const TOL = 2;
      const problems = [];
      const describe = (el) => {
        const parts = [];
        for (let e = el; e && parts.length < 3; e = e.parentElement) {
          const t = e.getAttribute && e.getAttribute('data-testid');
          if (t) parts.push(t);
        }
        const text = (el.value || el.innerText || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60);
        return `${el.tagName.toLowerCase()}[${parts.join('<')}] "${text}"`;
      };
      const visible = (el) => {
        const r = el.getBoundingClientRect();
        if (r.width < 2 || r.height < 2) return false;
        const cs = getComputedStyle(el);
        return cs.visibility !== 'hidden' && cs.display !== 'none' && cs.opacity !== '0';
      };
      const scrolls = (cs) => ['auto', 'scroll'].includes(cs.overflowX);
      const root = document.querySelector('[data-testid="stApp"]');
      const seen = new Set();
      // 1. text that does not fit its box
      for (const node of root.querySelectorAll('*')) {
        if (node.closest('.js-plotly-plot, [data-testid="stDataFrame"], [data-testid="stCode"], pre, textarea, iframe, [data-testid="stTooltipContent"]')) continue;
        const own = node.tagName === 'INPUT' ? !!node.value : Array.from(node.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        let el = node;
        while (el && el !== root && getComputedStyle(el).display === 'inline') el = el.parentElement;
        if (!el || seen.has(el) || !visible(el)) continue;
        seen.add(el);
        const cs = getComputedStyle(el);
        if (scrolls(cs)) continue;
        // clipped text (an ellipsis, overflow hidden) loses characters at the first pixel
    const tol = (cs.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(cs.overflowX)) ? 0 : TOL;
    if (el.scrollWidth > el.clientWidth + tol) {
          problems.push(`text overflows its box (${el.scrollWidth} > ${el.clientWidth} px): ${describe(el)}`);
        }
      }
      // 2. anything that sticks out of its column or of the page's content area (outside a scrolling box)
      const stop = document.querySelector('[data-testid="stMain"]');
      let reported = 0;
      const outside = [];                 // report the outermost element only
      for (const el of root.querySelectorAll('[data-testid="stMain"] *')) {
        if (reported >= 5) break;
        if (el.closest('[data-testid="stDataFrame"]') || !visible(el)) continue;  // the grid scrolls itself
        let clipped = false;
        for (let a = el.parentElement; a && a !== stop && a !== root; a = a.parentElement) {
          const cs = getComputedStyle(a);
          if (scrolls(cs) || cs.overflowX === 'hidden' || cs.overflowX === 'clip') { clipped = true; break; }
        }
        if (clipped) continue;
        const box = el.parentElement.closest('[data-testid="stColumn"], [data-testid="stMainBlockContainer"]');
        if (!box) continue;
        const b = box.getBoundingClientRect();
        const right = b.right - parseFloat(getComputedStyle(box).paddingRight);
        const r = el.getBoundingClientRect();
        if (r.right > right + TOL && !outside.some(o => o.contains(el))) {
          problems.push(`sticks out of its column by ${Math.round(r.right - right)} px: ${describe(el)}`);
          outside.push(el);
          reported++;
        }
      }
      // 3. charts: no wider than their column, and every label inside the chart
      for (const chart of root.querySelectorAll('[data-testid="stPlotlyChart"]')) {
        if (!visible(chart)) continue;
        const col = chart.closest('[data-testid="stColumn"]') || chart.closest('[data-testid="stMainBlockContainer"]') || chart.parentElement;
        const c = col.getBoundingClientRect();
        const svg = chart.querySelector('.main-svg');
        if (!svg) continue;
        const s = svg.getBoundingClientRect();
        if (s.width > c.width + TOL) problems.push(`chart wider than its column (${Math.round(s.width)} > ${Math.round(c.width)} px): ${describe(chart)}`);
        for (const t of chart.querySelectorAll('.main-svg text')) {
          if (!t.textContent.trim() || !visible(t)) continue;
          const r = t.getBoundingClientRect();
          if (r.left < s.left - TOL || r.right > s.right + TOL || r.top < s.top - TOL || r.bottom > s.bottom + TOL) {
            problems.push(`chart label outside the chart: "${t.textContent.trim().slice(0, 40)}" in ${describe(chart)}`);
            break;
          }
        }
      }
      return problems;
    }
"""


async def settle(page, timeout_s: float = 90, quiet_s: float = 1.0) -> None:
    """Until the script has run and the page has stopped changing: no skeleton placeholders and
    every chart drawn, for quiet_s in a row."""
    app = page.locator("[data-testid='stApp']")
    t0, quiet = time.monotonic(), 0.0
    while time.monotonic() - t0 < timeout_s:
        busy = (await app.get_attribute("data-test-script-state") == "running"
                or await page.locator("[data-testid='stSkeleton']").count() > 0
                or await page.evaluate("""() => Array.from(document.querySelectorAll(
                    '[data-testid="stPlotlyChart"]')).some(c => !c.querySelector('.main-svg'))"""))
        quiet = 0.0 if busy else quiet + 0.25
        if quiet >= quiet_s:
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"the page kept changing for {timeout_s:.0f} s")


async def layout_problems(page) -> list[str]:
    """What does not fit on the page as it is now (LAYOUT_JS), in words."""
    return await page.evaluate(LAYOUT_JS)


async def presentation_mode(page, on: bool = True, timeout_s: float = 60) -> None:
    """Switch presentation mode (in the top bar) on (or off), as a teacher does."""
    switch = page.locator(".st-key-karp_present")
    if await switch.locator("input").is_checked(timeout=timeout_s * 1000) != on:
        await switch.get_by_text("Presentation mode").click(timeout=timeout_s * 1000)
        await wait_idle(page, timeout_s)


# --- actions; each returns the seconds a person waited for the answer


PERCENT = re.compile(r"\d+(\.\d+)?%")


async def predict(page, timeout_s: float = 60) -> Timing:
    """On 'Predict and look inside': a random test image, timed from the click until its
    prediction (a heading 'class: 97.1%') is drawn."""
    ms = timeout_s * 1000
    random = page.get_by_role("button", name="Random")
    if await random.count() == 0:
        await page.get_by_text("Test image", exact=False).first.click(timeout=ms)
        await random.first.wait_for(timeout=ms)
        await wait_idle(page, timeout_s)
    heading = page.get_by_role("heading", name=PERCENT)
    before = await heading.first.inner_text(timeout=ms) if await heading.count() else None

    async def changed() -> bool:
        return await heading.count() > 0 and await heading.first.inner_text() != before

    t0 = time.perf_counter()
    await random.first.click(timeout=ms)
    await rerun_done(page, changed, timeout_s)
    dt = time.perf_counter() - t0
    await heading.first.wait_for(timeout=ms)
    return Timing(dt, _answered(page, t0))


async def explain(page, timeout_s: float = 120) -> Timing:
    """On 'Explain': a test image by number, timed from the input until the page has drawn its
    prediction and attribution maps."""
    ms = timeout_s * 1000
    box = page.get_by_label(re.compile("Test image number"))
    if await box.count() == 0:
        await page.get_by_text("A test image", exact=False).first.click(timeout=ms)
        await box.first.wait_for(timeout=ms)
        await wait_idle(page, timeout_s)
    n = int(time.time() * 1000) % 900 + 1
    shown = page.get_by_text(f"test image #{n}", exact=False)

    async def changed() -> bool:
        return await shown.count() > 0

    t0 = time.perf_counter()
    await box.first.fill(str(n), timeout=ms)
    await box.first.press("Enter", timeout=ms)
    await rerun_done(page, changed, timeout_s)
    dt = time.perf_counter() - t0
    await shown.first.wait_for(timeout=ms)
    return Timing(dt, _answered(page, t0))


async def start_training(page, dataset: str = "digits", steps: int = 60,
                         timeout_s: float = 60) -> None:
    """On 'Train': a short run on a small dataset."""
    ms = timeout_s * 1000
    await page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").click(timeout=ms)
    await page.get_by_role("option", name=dataset).click(timeout=ms)
    await wait_idle(page, timeout_s)
    steps_box = page.get_by_role("spinbutton", name="Steps")
    await steps_box.fill(str(steps), timeout=ms)
    await steps_box.press("Enter", timeout=ms)
    await wait_idle(page, timeout_s)
    await page.get_by_role("button", name="Start training").click(timeout=ms)
    await page.locator("[data-testid='stProgress']").first.wait_for(timeout=ms)


async def training_state(page) -> str:
    """'queued' | 'running' | 'stopped' | 'done' | 'failed' | '' from the run's progress text."""
    bar = page.locator("[data-testid='stProgress']")
    if await bar.count() == 0:
        return ""
    text = (await bar.first.inner_text()).lower()
    for state in ("queued", "running", "stopped", "done", "failed"):
        if state in text:
            return state
    return ""


async def stop_training(page) -> None:
    stop = page.get_by_role("button", name="Stop")
    if await stop.count():
        await stop.first.click()
