"""AppTest: app.py and every page run without an exception and show what they promise."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


def run(path: str, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_opens_on_home():
    at = run("app.py")
    assert at.title[0].value.startswith("karp")
    assert any("Runs on" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page):
    run(f"pages/{page}")


def test_home_lists_device_datasets_and_models():
    at = run("pages/home.py")
    assert any(("CPU" in i.value) or ("GPU" in i.value) for i in at.info)
    frames = [d.value for d in at.dataframe]
    datasets = frames[0]
    assert {"fashion-mnist", "mnist", "digits", "cifar10", "shakespeare", "names"} <= set(datasets["dataset"])


def test_datasets_page_shows_each_available_dataset():
    at = run("pages/datasets.py")
    box = at.selectbox(key="datasets_name")
    for name in box.options:
        if "(missing)" in name:
            continue
        box.set_value(name).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert len(at.metric) == 3
        box = at.selectbox(key="datasets_name")
