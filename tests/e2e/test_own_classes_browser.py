"""Browser test of issue 21's promise, in the real app in headless Chromium: make three classes from
uploaded pictures (simple shapes drawn by the test), fine-tune all three ways with a small
budget, save a run, predict a new picture with it and explain the prediction (attributions and
the sanity check). The steps are tests/e2e/own_flow.py's, which also takes the screenshots."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actions as act  # noqa: E402
import own_flow as flow  # noqa: E402

if not Path(act.CHROMIUM).exists():
    pytest.skip("Chromium is absent: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = act.free_port()
    runs = tmp_path_factory.mktemp("runs")
    env = {"KARP_RUNS": str(runs), "TORCH_HOME": str(tmp_path_factory.mktemp("torch"))}  # nothing cached
    proc = act.start_server(port, env, timeout_s=90)
    try:
        yield f"http://127.0.0.1:{port}", runs
    finally:
        act.stop_server(proc)


def fits(page, when: str) -> None:
    """Nothing cut off or sticking out at 1280x720 (actions.LAYOUT_JS), charts drawn first."""
    flow.wait_idle(page)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
                              .every(c => c.querySelector('.main-svg'))""", timeout=30_000)
    problems = page.evaluate(act.LAYOUT_JS)
    assert not problems, (when, problems)


def test_three_classes_from_uploads_fine_tuned_predicted_and_explained(server, tmp_path):
    base, runs = server
    files = flow.write_shapes(tmp_path, per_class=8)
    (tmp_path / "new").mkdir()
    new = flow.write_shapes(tmp_path / "new", per_class=1, start=500)["square"][0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720}, locale=act.LOCALE)
            flow.open_own_page(page, base)
            flow.make_classes(page, files)
            flow.no_exceptions(page, "classes")
            fits(page, "the classes")
            names = page.get_by_label("Class name")
            assert [names.nth(i).input_value() for i in range(names.count())] == list(flow.SHAPES)
            assert page.get_by_text("8 images", exact=True).count() == 3

            flow.train_all(page, steps=30)
            flow.no_exceptions(page, "training")
            fits(page, "the three runs")
            traces = flow.chart_traces(page, "Validation accuracy of the three ways")
            assert [t["name"] for t in traces] == ["Head only", "Whole network", "From scratch"]
            assert all(len(t["y"]) == 5 for t in traces)      # an evaluation every 6 of 30 steps
            assert max(t["y"][-1] for t in traces) > 100 / 3  # better than chance, at least one way

            flow.save_run(page, 1, "shapes-whole")            # the whole network
            assert (runs / "shapes-whole.safetensors").is_file()
            fits(page, "a saved run")
            assert (runs / "datasets" / "my-classes.safetensors").is_file()
            flow.open_in(page, "Predict", "predict")
            flow.no_exceptions(page, "predict")
            shown, _pct = flow.prediction(page)               # one of the validation images
            assert shown in flow.SHAPES
            assert page.get_by_text(re.compile(r"One of your validation images")).count() == 1
            guess, pct = flow.predict_upload(page, new)       # a new picture, read by the fashion recipe
            assert guess in flow.SHAPES and 0 < pct <= 100
            assert page.get_by_text("(fashion recipe", exact=False).count() == 1
            flow.no_exceptions(page, "predict upload")

            page.get_by_role("button", name=re.compile("Explain this prediction")).click()
            page.wait_for_url("**/explain**", timeout=30_000)
            flow.wait_idle(page, 180)
            page.get_by_text("upload: square-500.png", exact=False).first.wait_for(timeout=60_000)
            flow.no_exceptions(page, "explain")
            page.get_by_role("tab", name="Sanity check").click()
            page.get_by_role("button", name=re.compile("Run the sanity check")).click()
            page.get_by_text(re.compile(r"Done in [\d.]+ s \(seed")).first.wait_for(timeout=300_000)
            flow.wait_idle(page, 240)
            verdicts = page.locator("[data-testid='stAlert']").all_inner_texts()
            assert any(re.search(r"(passes|fails|partly|cannot)", v) for v in verdicts), verdicts
            flow.no_exceptions(page, "sanity check")
        finally:
            browser.close()


def test_a_camera_shot_joins_the_chosen_class(server):
    """Chromium's fake camera (a test pattern) stands in for a webcam."""
    base, _runs = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 720}, locale=act.LOCALE, permissions=["camera"]).new_page()
            flow.open_own_page(page, base)
            page.get_by_text("Take photos with the camera", exact=True).click()
            flow.wait_idle(page)
            page.locator("[data-testid='stSelectbox']").filter(has_text="Add the shot to").click()
            page.get_by_role("option", name="Class 2").click()
            flow.wait_idle(page)
            page.get_by_role("button", name="Take Photo").click(timeout=60_000)
            page.get_by_text("Added to Class 2.", exact=False).wait_for(timeout=60_000)
            flow.wait_idle(page)
            counts = page.get_by_text(re.compile(r"^\d+ images?$")).all_inner_texts()
            assert counts == ["0 images", "1 image"], counts   # the card counts it at once
            page.get_by_role("button", name="Clear photo").click()
            flow.wait_idle(page)
            page.get_by_role("button", name="Take Photo").click(timeout=60_000)
            flow.until(lambda: page.get_by_text("2 images", exact=True).count() == 1, 60, "no second shot")
            flow.no_exceptions(page, "camera")
        finally:
            browser.close()
