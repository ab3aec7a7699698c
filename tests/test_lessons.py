"""Lesson files (issue 24): every file parses, every step opens a page that exists in a state its widgets
can take, English and Chinese have the same steps, and a class's answers are counted anonymously."""
from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import pytest

from karp_models import lessons as ls
from karp_models.i18n import _, using

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "lessons").glob("*/*.yaml"))
IDS = sorted({p.stem for p in FILES})


def widget_keys() -> tuple[set[str], list[str]]:
    """Every widget key written as a string in pages/ and karp_models/ui/ (exact), and the constant
    beginnings of f-string keys (key=f"explain_methods_{...}", key=f"{P}_model" with P's value)."""
    exact, prefixes = set(), []
    for path in [*(ROOT / "pages").glob("*.py"), *(ROOT / "karp_models/ui").glob("*.py")]:
        tree = ast.parse(path.read_text())
        consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)
                  and isinstance(n.value.value, str)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    values = [kw.value.body, kw.value.orelse] if isinstance(kw.value, ast.IfExp) else [kw.value]
                    if kw.arg == "key" and not isinstance(kw.value, ast.JoinedStr):
                        exact |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
                    elif kw.arg == "key" and isinstance(kw.value, ast.JoinedStr):
                        text = "".join(v.value if isinstance(v, ast.Constant) else
                                       consts.get(getattr(v.value, "id", ""), "\0") for v in kw.value.values)
                        if text.split("\0")[0]:                 # an unknown beginning proves nothing
                            prefixes.append(text.split("\0")[0])
                if getattr(node.func, "id", getattr(node.func, "attr", "")) == "model_picker" and node.args \
                        and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                    a = node.args[0]
                    exact.add(a.value) if isinstance(a, ast.Constant) else prefixes.append(
                        "".join(v.value if isinstance(v, ast.Constant) else consts.get(getattr(v.value, "id", ""), "\0")
                                for v in a.values).split("\0")[0])
    return exact, [p for p in prefixes if len(p) > 3]


EXACT, PREFIXES = widget_keys()


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_lesson_file_parses_and_its_steps_exist(path):
    lesson = ls.read(path)
    assert lesson.steps and lesson.title and lesson.summary
    for n, step in enumerate(lesson.steps, 1):
        assert (ROOT / "pages" / f"{step.page}.py").exists(), f"step {n}: no page {step.page}"
        assert f'"pages/{step.page}.py"' in (ROOT / "app.py").read_text(), f"step {n}: {step.page} not in app.py"
        for key in step.state:
            assert key.startswith(step.page.split("_")[0]), f"step {n}: {key} is another page's widget"
            assert key in EXACT or any(key.startswith(p) for p in PREFIXES), f"step {n}: no widget {key}"
        q = step.question
        if q is not None and "model" in q.params and q.kind != "init_loss":
            assert (ROOT / "weights" / f"{q.params['model']}.safetensors").exists()


def test_the_lessons_asked_for_are_there_in_both_languages():
    for lang in ls.LANGS:
        assert {p.stem for p in (ROOT / "lessons" / lang).glob("*.yaml")} == set(IDS)
    assert {"convolution", "recipe", "trust", "attention", "rnn_memory", "gans", "captioning",
            "own_classes"} <= set(IDS)
    kinds = {s.question.kind for p in FILES for s in ls.read(p).steps if s.question}
    assert kinds == set(ls.KINDS)                     # every kind of question is asked somewhere


@pytest.mark.parametrize("lesson_id", IDS)
def test_english_and_chinese_have_the_same_steps(lesson_id):
    en, zh = (ls.read(ROOT / "lessons" / lang / f"{lesson_id}.yaml") for lang in ("en", "zh"))
    assert en.order == zh.order and len(en.steps) == len(zh.steps)
    assert re.search(r"[\u4e00-\u9fff]", zh.title) and not re.search(r"[\u4e00-\u9fff]", en.title)
    for a, b in zip(en.steps, zh.steps):
        assert a.page == b.page and a.state.keys() == b.state.keys()
        for k, v in a.state.items():                 # a choice widget's link holds its label, in zh translated
            with using("zh"):
                assert b.state[k] in (v, _(str(v))), (k, v, b.state[k])
        assert (a.question is None) == (b.question is None)
        if a.question:
            assert a.question.kind == b.question.kind
            same = {k: v for k, v in a.question.params.items() if k != "options"}
            assert same == {k: v for k, v in b.question.params.items() if k != "options"}
            assert len(a.question.params.get("options", [])) == len(b.question.params.get("options", []))


def test_a_broken_file_is_named_with_what_is_wrong(tmp_path):
    bad = {"no_steps.yaml": "title: x\nsteps: []\n", "yaml.yaml": "title: [x\n",
           "no_page.yaml": "title: x\nsteps:\n  - text: hi\n",
           "kind.yaml": "title: x\nsteps:\n  - {text: hi, page: home, question: {kind: essay, prompt: why}}\n",
           "answer.yaml": "title: x\nsteps:\n  - {text: hi, page: home, question: "
                          "{kind: choice, prompt: p, options: [a, b], answer: 2}}\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ls.LessonError, match=name):
            ls.read(tmp_path / name)


def test_load_all_falls_back_to_english_and_keeps_the_order(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "zh").mkdir()
    (tmp_path / "en" / "b.yaml").write_text("title: B\norder: 1\nsteps:\n  - {text: t, page: home}\n")
    (tmp_path / "en" / "a.yaml").write_text("title: A\norder: 2\nsteps:\n  - {text: t, page: home}\n")
    (tmp_path / "zh" / "a.yaml").write_text("title: 甲\norder: 2\nsteps:\n  - {text: t, page: home}\n")
    assert [les.title for les in ls.load_all("zh", tmp_path)] == ["B", "甲"]
    assert [les.title for les in ls.load_all("en", tmp_path)] == ["B", "A"]


def test_class_answers_count_each_voter_once_and_only_counts_leave():
    store = ls.ClassAnswers(max_classes=2, max_voters=3)
    store.record("7b", "attention", 0, "v1", "e")
    store.record("7B ", "attention", 0, "v2", "r")
    store.record("7B", "attention", 0, "v1", "a")            # v1 changed their mind: counted once
    assert store.tally("7b", "attention", 0) == {"a": 1, "r": 1}
    assert store.tally("7B", "attention", 1) == {}             # another step
    assert store.record("7B", "attention", 0, "v3", "e")
    assert not store.record("7B", "attention", 0, "v4", "e")   # full: not counted
    store.record("8A", "x", 0, "v1", "1")
    store.record("9C", "x", 0, "v1", "1")                      # a third class drops the oldest
    assert store.tally("7B", "attention", 0) == {}


def test_class_answers_from_many_threads_all_count():
    store = ls.ClassAnswers()
    threads = [threading.Thread(target=lambda i=i: store.record("C", "l", 0, f"v{i}", str(i % 3)))
               for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.tally("C", "l", 0) == {"0": 20, "1": 20, "2": 20}


def test_a_step_link_writes_booleans_as_streamlit_does():
    step = ls.Step("t", "vit_attention", {"vit_attention_smooth": False, "vit_attention_index": 3})
    assert step.query() == {"vit_attention_smooth": "false", "vit_attention_index": "3"}
