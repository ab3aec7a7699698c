"""AppTest: app.py and every page run (through the navigation) without an exception."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


def open_page(page: str | None = None, timeout: float = 120) -> AppTest:
    """Run app.py, then switch to `page` (pages/NAME.py) the way the sidebar does."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(f"pages/{page}")
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
    return at


def test_app_opens_on_home():
    at = open_page()
    assert at.title[0].value.startswith("karp")
    assert any("Runs on" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page):
    at = open_page(page)
    assert at.title, f"{page} shows no title"


def test_home_lists_device_datasets_and_models():
    at = open_page("home.py")
    assert any(("CPU" in i.value) or ("GPU" in i.value) for i in at.info)
    datasets = at.table[0].value
    assert {"fashion-mnist", "mnist", "digits", "cifar10", "shakespeare", "names"} <= set(datasets.index)
    fm = datasets.loc["fashion-mnist"]
    assert "available" in fm["status"] and "60,000" in fm["splits"]
    assert any("download cifar10" in c.value for c in at.code)        # under "For developers"


def test_datasets_page_shows_each_available_dataset():
    at = open_page("datasets.py")
    box = at.selectbox(key="datasets_name")
    shown = 0
    for option in list(box.options):
        if "(missing)" in option:
            continue
        at.selectbox(key="datasets_name").set_value(option).run()
        assert not at.exception, (option, [e.value for e in at.exception])
        assert len(at.metric) == 3
        shown += 1
    assert shown >= 5
