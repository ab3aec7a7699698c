"""The own-classes flow as a person does it in the browser (Playwright, sync API): pictures of
simple shapes made here, three classes named and filled by upload, fine-tuning all three ways
with a small budget, saving a run, opening it in Predict and Explain. Shared by the browser test
(test_own_classes_browser.py) and the screenshots of the flow (python tests/e2e/own_flow.py).
"""
from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402

SHAPES = ("circle", "square", "triangle")
EXCEPTION = act.EXCEPTION


def shape_png(shape: str, i: int, side: int = 96, hard: bool = False) -> bytes:
    """A dark `shape` of random size and place on a light, slightly noisy background (seeded by
    i); hard: only its outline, turned by a random angle, with a stray line beside it."""
    rng = np.random.default_rng(1000 * SHAPES.index(shape) + i + 50_000 * hard)
    bg = rng.integers(215, 245)
    img = Image.fromarray(np.clip(bg + rng.normal(0, 4, (side, side, 3)), 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    r = int(rng.integers(side // 5, side // 3))
    cx, cy = (int(v) for v in rng.integers(r + 4, side - r - 4, 2))
    ink = tuple(int(v) for v in rng.integers(10, 90, 3))
    turn = float(rng.uniform(0, 2 * np.pi)) if hard else 0.0
    corners = {"square": 4, "triangle": 3}.get(shape, 0)
    if corners:
        start = -np.pi / 2 + turn + (np.pi / 4 if corners == 4 and not hard else 0)
        k = np.sqrt(2) if corners == 4 and not hard else 1.0
        pts = [(cx + k * r * np.cos(start + 2 * np.pi * j / corners), cy + k * r * np.sin(start + 2 * np.pi * j / corners))
               for j in range(corners)]
        if corners == 3 and not hard:
            pts = [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
        d.polygon(pts, fill=None if hard else ink, outline=ink if hard else None,
                  width=int(rng.integers(2, 6)) if hard else 1)
    else:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=None if hard else ink, outline=ink,
                  width=int(rng.integers(2, 6)) if hard else 1)
    if hard:
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, side, 4))
        d.line([x0, y0, x1, y1], fill=ink, width=2)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def write_shapes(folder: Path, per_class: int = 10, start: int = 0, hard: bool = False) -> dict[str, list[Path]]:
    """{shape: [png files]} written into folder."""
    out = {}
    for s in SHAPES:
        out[s] = []
        for i in range(start, start + per_class):
            p = folder / f"{s}-{i}.png"
            p.write_bytes(shape_png(s, i, hard=hard))
            out[s].append(p)
    return out


# --- waiting


def wait_idle(page, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    time.sleep(0.3)
    while time.time() < deadline:
        if page.get_attribute("[data-testid='stApp']", "data-test-script-state") == "notRunning":
            return
        time.sleep(0.2)
    raise TimeoutError(f"still running after {timeout_s:.0f} s")


def until(check, timeout_s: float, what: str, every_s: float = 0.5):
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise TimeoutError(f"{what} after {timeout_s:.0f} s")


def no_exceptions(page, where: str) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, f"{where}: {[boxes.nth(i).inner_text()[:400] for i in range(boxes.count())]}"


def shot(page, path: Path, full: bool = True) -> None:
    """A screenshot at the page's width: the whole page (Streamlit scrolls inside its own box, so
    the window is made as tall as the content for the shot), or only what is on the screen."""
    size = page.viewport_size
    if full:
        h = page.evaluate("""() => Math.max(...Array.from(document.querySelectorAll('[data-testid="stMain"], '
                          + '[data-testid="stAppScrollToBottomContainer"], section.main')).map(e => e.scrollHeight), 0)""")
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(h) + 40)})
        time.sleep(1.0)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


# --- the steps


def open_own_page(page, base: str) -> None:
    page.goto(base + "/", timeout=90_000)
    wait_idle(page, 90)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Your own classes").click()
    page.wait_for_url(re.compile(r"/own_classes(\?|$)"), timeout=30_000)   # the address keeps ?lang=
    wait_idle(page)
    page.get_by_role("heading", name="1. Your classes").wait_for(timeout=30_000)


def make_classes(page, files: dict[str, list[Path]]) -> None:
    """Add a third class, name the three after the shapes and upload each one's files at once."""
    page.get_by_role("button", name="Add a class").click()
    wait_idle(page)
    names = page.get_by_label("Class name")
    until(lambda: names.count() == len(files), 30, "no third class")
    for i, shape in enumerate(files):
        box = names.nth(i)
        box.fill(shape)
        box.press("Enter")
        wait_idle(page)
    for i, (shape, paths) in enumerate(files.items()):
        page.locator("[data-testid='stFileUploader'] input[type='file']").nth(i).set_input_files(
            [str(p) for p in paths])
        until(lambda n=len(paths), i=i: page.get_by_text(f"{n} images", exact=True).count() > i, 60,
              f"the {shape} images did not arrive")
        wait_idle(page)


def train_all(page, steps: int = 30, timeout_s: float = 240) -> None:
    box = page.get_by_role("spinbutton", name="Training steps per mode")
    box.fill(str(steps))
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Train all three ways and compare").click()
    bars = page.locator("[data-testid='stProgress']")
    until(lambda: bars.count() == 3, 60, "three runs did not appear")

    def done() -> bool:
        texts = [bars.nth(i).inner_text().lower() for i in range(bars.count())]
        assert not any("failed" in t for t in texts), texts
        return bars.count() == 3 and all(t.startswith("done") for t in texts)

    until(done, timeout_s, "the three runs did not finish", every_s=1.0)
    wait_idle(page)


def chart_traces(page, key_text: str) -> list[dict]:
    """name and y of every trace of the plotly chart whose title contains key_text."""
    return page.evaluate("""(t) => {
      for (const g of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')) {
        const title = (g.layout && g.layout.title && (g.layout.title.text || g.layout.title)) || '';
        if (String(title).includes(t)) return (g.data || []).map(d => ({name: d.name, y: d.y}));
      }
      return [];
    }""", key_text)


def save_run(page, index: int, name: str) -> None:
    """Save the index-th of the runs not saved yet (0 head, 1 whole, 2 scratch at first) as name."""
    page.get_by_role("button", name="Save", exact=True).nth(index).click()
    box = page.get_by_label("Save this run as")
    box.wait_for(timeout=30_000)
    box.fill(name)
    page.get_by_role("button", name="Save run").click()
    page.get_by_text(f"Saved as {name}").wait_for(timeout=60_000)
    wait_idle(page)


def to_top(page, heading: str) -> None:
    """Scroll so that `heading` is at the top of the screen."""
    page.get_by_role("heading", name=heading).evaluate("e => e.scrollIntoView({block: 'start'})")
    time.sleep(0.8)


def open_in(page, label: str, url_part: str) -> None:
    page.get_by_role("link", name=label).first.click()
    page.wait_for_url(f"**/{url_part}**", timeout=30_000)
    wait_idle(page, 90)


PERCENT = re.compile(r"^(.+): (\d+(\.\d+)?)%$")


def prediction(page) -> tuple[str, float]:
    """(class, percent) of Predict's prediction heading."""
    h = page.get_by_role("heading", name=re.compile(r"\d%$"))
    h.first.wait_for(timeout=60_000)
    m = PERCENT.match(h.first.inner_text().strip())
    assert m, h.first.inner_text()
    return m.group(1), float(m.group(2))


def predict_upload(page, path: Path) -> tuple[str, float]:
    page.get_by_text("Upload", exact=True).first.click()
    wait_idle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(path))
    page.get_by_text(f"Showing {path.name}").or_(page.get_by_text("How the image becomes")).first.wait_for(timeout=60_000)
    wait_idle(page, 90)
    return prediction(page)


def held_out(page, percent: int) -> None:
    """Move the validation share slider (10..50 in steps of 5) to percent with the keyboard."""
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    now = int(float(slider.input_value()))
    slider.focus()
    for _i in range(abs(percent - now) // 5):
        slider.press("ArrowRight" if percent > now else "ArrowLeft")
    wait_idle(page)


if __name__ == "__main__":      # screenshots at 1280x720: python tests/e2e/own_flow.py BASE OUT_DIR [STEPS [hard]]
    from playwright.sync_api import sync_playwright

    base, out = sys.argv[1], Path(sys.argv[2])
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    hard = len(sys.argv) > 4 and sys.argv[4] == "hard"
    out.mkdir(parents=True, exist_ok=True)
    files = write_shapes(out, 16 if hard else 10, hard=hard)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720}, locale=act.LOCALE)
        open_own_page(page, base)
        make_classes(page, files)
        if hard:
            held_out(page, 50)
        shot(page, out / "1-classes.png")
        shot(page, out / "1b-classes-screen.png", full=False)
        page.get_by_text("How to train").evaluate("e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.8)
        shot(page, out / "2-frozen-head.png", full=False)
        page.get_by_test_id("stRadio").get_by_text("Whole network").click()
        wait_idle(page)
        time.sleep(0.5)
        shot(page, out / "2b-frozen-whole.png", full=False)
        train_all(page, steps=steps, timeout_s=900)
        to_top(page, "3. The three ways compared")
        shot(page, out / "3-three-modes.png", full=False)
        shot(page, out / "3b-page.png")
        save_run(page, 0, "shapes-head")
        to_top(page, "3. The three ways compared")
        page.mouse.wheel(0, 300)
        time.sleep(0.5)
        shot(page, out / "4-saved.png", full=False)
        open_in(page, "Predict", "predict")
        print("validation image:", prediction(page))
        shot(page, out / "5-predict-validation-image.png", full=False)
        (out / "new").mkdir(exist_ok=True)
        extra = write_shapes(out / "new", 1, start=100, hard=hard)
        print("upload:", predict_upload(page, extra["triangle"][0]))
        shot(page, out / "6-predict-upload.png")
        page.get_by_role("button", name=re.compile("Explain this prediction")).click()
        page.wait_for_url("**/explain**", timeout=30_000)
        wait_idle(page, 120)
        shot(page, out / "7-explain.png")
        no_exceptions(page, "explain")
        page.goto(base + "/evaluate?evaluate_model=shapes-head", timeout=60_000)
        wait_idle(page, 90)
        shot(page, out / "8-evaluate.png")
        browser.close()
