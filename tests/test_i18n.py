"""karp_models.i18n: which language a call gets (an explicit block, the front end's resolver, the
environment), per thread; the compiled Chinese catalog answers; context, plural forms, lazy
spinner texts and lists."""
from __future__ import annotations

import threading

import pytest

from karp_models import i18n
from karp_models.i18n import L_, N_, _, join, ngettext, pgettext


@pytest.fixture
def resolver():
    """Install a resolver for one test; the previous one comes back after."""
    before = i18n._resolver
    answers: dict[str, str | None] = {"lang": None}
    i18n.set_language_resolver(lambda: answers["lang"])
    yield answers
    i18n.set_language_resolver(before)


@pytest.mark.parametrize("tag, lang", [("zh-CN", "zh"), ("zh_CN.UTF-8", "zh"), ("zh-Hans-CN", "zh"),
                                       ("zh-TW", "zh"), ("en-US", "en"), ("en", "en"), ("de-DE", None),
                                       ("C.UTF-8", None), ("", None), (None, None)])
def test_language_tags(tag, lang):
    assert i18n.normalise(tag) == lang


def test_english_is_the_message_itself_and_chinese_comes_from_the_catalog():
    assert _("Start training") == "Start training"
    with i18n.using("zh"):
        assert _("Start training") == "开始训练"
        assert _("no such message in any catalog") == "no such message in any catalog"
    assert _("Start training") == "Start training"


def test_placeholders_survive_translation():
    with i18n.using("zh"):
        text = _("Step {step} of {total}: {what}").format(step=3, total=10, what="x")
    assert text == "第 3 步（共 10 步）：x"


def test_context_keeps_apart_the_same_english_word():
    """The glossary's 'head' is an attention head, a layer name's 'head' a classifier's."""
    with i18n.using("zh"):
        assert pgettext("glossary", "head") == "头"
        assert pgettext("layer", "head") == "分类头"


def test_chinese_has_one_plural_form():
    one, many = ("CPU: {cores} cores, {threads} torch thread, float32 (no GPU found)",
                 "CPU: {cores} cores, {threads} torch threads, float32 (no GPU found)")
    assert ngettext(one, many, 1) == one and ngettext(one, many, 2) == many
    with i18n.using("zh"):
        assert ngettext(one, many, 1) == ngettext(one, many, 2) == \
            "CPU：{cores} 核，{threads} 个 torch 线程，float32（未找到 GPU）"


def test_marked_messages_are_translated_where_shown():
    dress = N_("Dress")
    assert dress == "Dress"
    with i18n.using("zh"):
        assert _(dress) == "连衣裙"


def test_a_lazy_message_speaks_the_language_of_the_moment_it_is_shown():
    spinner = L_("Loading the model…")          # made at import, shown later
    assert isinstance(spinner, str) and str(spinner) == "Loading the model…"
    with i18n.using("zh"):
        assert str(spinner) == "正在加载模型……" and f"{spinner}" == "正在加载模型……"


def test_lists_are_joined_as_the_language_writes_them():
    assert join(["Bag", "Coat"]) == "Bag, Coat"
    with i18n.using("zh"):
        assert join([_("Bag"), _("Coat")]) == "包、外套"


def test_an_explicit_block_beats_the_resolver_which_beats_the_environment(resolver):
    assert i18n.language() == "en"                   # the suite's KARP_LANG (tests/conftest.py)
    resolver["lang"] = "zh-CN"
    assert i18n.language() == "zh" and _("Train") == "训练"
    with i18n.using("en"):
        assert i18n.language() == "en"
    resolver["lang"] = "fr"                          # no catalog: the environment decides
    assert i18n.language() == "en"


def test_a_threads_language_is_its_own():
    """A training job's worker runs in the language of the session that started it, and that
    does not leak into the threads of other sessions."""
    seen: dict[str, str] = {}
    go = threading.Barrier(2)

    def worker(lang: str) -> None:
        with i18n.using(lang):
            go.wait(5)
            seen[lang] = _("Train")

    threads = [threading.Thread(target=worker, args=(lang,)) for lang in ("en", "zh")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"en": "Train", "zh": "训练"}
    assert i18n.language() == "en"


@pytest.mark.parametrize("env, lang", [({"KARP_LANG": "zh_CN"}, "zh"),
                                       ({"LANGUAGE": "de:zh_CN:en", "LANG": "C"}, "zh"),
                                       ({"LC_ALL": "zh_CN.UTF-8"}, "zh"),
                                       ({"LANG": "C.UTF-8"}, "en"), ({}, "en")])
def test_the_command_line_follows_the_environment(monkeypatch, env, lang):
    for var in ("KARP_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    i18n._environment_language.cache_clear()
    try:
        assert i18n._environment_language() == lang
    finally:
        monkeypatch.undo()
        i18n._environment_language.cache_clear()


def test_i18n_imports_no_part_of_karp_and_no_streamlit():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(i18n.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in names if m.startswith(("karp_models", "streamlit"))]
