"""AppTest: guided lessons (issue 24). Every step of every lesson opens its page in its state with no
exception and no part of its link ignored; the Lessons page lists them; a question is answered and graded;
two sessions of one class are counted together for the teacher, without names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from karp_models import lessons as ls
from karp_models.i18n import _, using
from karp_models.ui import explain as ex

ROOT = Path(__file__).resolve().parents[2]


def opened(page: str | None, lang: str = "en", **params) -> AppTest:
    """A fresh session on pages/<page> (None: app.py's first page, Home, with app.py's lesson panel: AppTest
    runs a page it switched to without app.py) with the link's `params`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["lang"] = lang
    if page is not None:
        at.run()
        at.switch_page(f"pages/{page}")
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


SHOWN_AS = {"explain_source": ex.SOURCES}                 # a choice shown through its format_func


def steps(lang: str) -> list[tuple[str, int, ls.Step]]:
    """Each distinct (page, state) of the lessons in `lang`, with the first lesson and step that opens it."""
    seen, out = set(), []
    for les in ls.load_all(lang):
        for i, s in enumerate(les.steps):
            key = (s.page, tuple(sorted(s.query().items())))
            if key not in seen:
                seen.add(key)
                out.append((les.id, i, s))
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_step_opens_its_page_in_its_state(lang):
    for lesson, i, step in steps(lang):
        at = opened(f"{step.page}.py", lang, **step.query())
        for k, v in step.query().items():                     # the widget took the link's value
            got = at.session_state[k] if k in at.session_state else None
            shown = str(getattr(got, "label", got))
            with using(lang):                                 # a choice's link holds its label, in the language
                label = _(SHOWN_AS.get(k, {}).get(shown, shown))
            assert v in (shown, label) or (shown.replace(".", "").isdigit() and float(shown) == float(v)), (
                lesson, i + 1, k, v, got)


def test_the_lessons_page_lists_every_lesson_with_a_start_button():
    at = opened("lessons.py")
    titles = [h.value for h in at.subheader]
    assert titles[0] == "What a convolution sees"                     # the first, top left
    assert sorted(titles) == sorted(les.title for les in ls.load_all("en"))
    assert len([b for b in at.button if b.label == "Start this lesson"]) == len(ls.load_all("en"))
    zh = opened("lessons.py", "zh")
    assert "卷积看到了什么" in [h.value for h in zh.subheader]


def panel_app() -> None:
    """app.py's lesson panel alone (AppTest runs only a page after its first run, not app.py)."""
    from karp_models.ui import language, lessons
    language.switch()
    active = lessons.current()
    if active is not None:
        lessons.panel(*active)


def panel(**params) -> AppTest:
    at = AppTest.from_function(panel_app, default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def answer_choice(at: AppTest, pick: str) -> AppTest:
    radio = next(r for r in at.radio if r.key and r.key.startswith("lesson_answer_"))
    radio.set_value(pick).run()
    next(b for b in at.button if b.key and b.key.endswith("_check")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_question_is_graded_and_the_teacher_sees_the_class_s_answers_without_names():
    code = "AT-7B"
    sessions = []
    for pick in ("Close to 0", "Still about 2.3"):
        at = panel(lang="en", lesson="recipe", lesson_step="2")
        at.session_state["lesson_class"] = code
        at.run()
        sessions.append(answer_choice(at, pick))
    right, wrong = (" ".join(m.value for m in s.markdown) for s in sessions)
    assert "✓ right" in right and "The answer is **Close to 0**." in right
    assert "✗ wrong" in wrong and "✓ right" not in wrong
    teacher = sessions[0]
    teacher.toggle(key="lesson_teacher_view_widget").set_value(True).run()
    shown = " ".join(m.value for m in teacher.markdown)
    assert f"**2 answers** from class {code}" in shown
    bars = json.loads(teacher.get("plotly_chart")[-1].proto.spec)["data"][0]
    assert dict(zip(bars["x"], bars["y"])) == {"Close to 0": 1, "Still about 2.3": 1, "Higher than at the start": 0}
    assert bars["marker"]["color"][0] == "#22c55e"                   # the right answer in green


def test_without_a_class_code_nothing_is_counted_and_no_teacher_switch():
    at = answer_choice(panel(lang="en", lesson="trust", lesson_step="2"), "Change a lot")
    assert "✓ right" in " ".join(m.value for m in at.markdown)
    assert not [t for t in at.toggle if t.key == "lesson_teacher_view_widget"]


def test_the_panel_shows_the_step_and_a_lesson_that_does_not_exist_shows_nothing():
    at = panel(lang="zh", lesson="recipe", lesson_step="4")
    assert any("网络是怎样学习的" in c.value for c in at.caption)
    assert any("学习率为 10 时" in m.value for m in at.markdown)
    assert not any(b.key == "lesson_next" for b in at.button)          # the last step: Finish
    assert any(b.key == "lesson_finish" for b in at.button)
    assert not panel(lang="en", lesson="no-such-lesson", lesson_step="9").caption
    first = panel(lang="en", lesson="recipe", lesson_step="-5")        # out of range: the nearest step
    assert any("step 1 of 4" in c.value for c in first.caption)


def test_a_lesson_link_sets_the_session_s_lesson_and_step():
    at = panel(lang="zh", lesson="trust", lesson_step="2")
    assert at.session_state["lesson_active"] == ("trust", 1)
    assert any("第 2 步" in c.value or "step 2 of 3" in c.value for c in at.caption)



def bound_panel_app() -> None:
    """The lesson panel beside a page whose widget is bound to the link (Train's learning rate)."""
    import streamlit as st

    from karp_models.ui import language, lessons
    language.switch()
    st.session_state["lesson_page"] = "train"           # app.py's showing(): this run shows Train
    active = lessons.current()
    if active is not None:
        lessons.panel(*active)
    st.number_input("lr", 0.0, 100.0, 0.003, key="train_lr", bind="query-params")


def test_finish_on_a_last_step_whose_page_binds_widgets_ends_the_lesson_without_an_error():
    at = AppTest.from_function(bound_panel_app, default_timeout=180)
    for k, v in {"lang": "en", "lesson": "recipe", "lesson_step": "4", "train_lr": "0.1"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    next(b for b in at.button if b.key == "lesson_finish").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "lesson_active" not in at.session_state
    assert "lesson" not in at.query_params and not any("step 4 of 4" in c.value for c in at.caption)


def test_a_step_on_explain_shows_its_test_image_even_after_predict_shared_one():
    """The Grad-CAM question grades test image 7: its step's link must show image 7, whatever image Predict
    left for Explain to use (its first choice when one is there) and with or without the link's index."""
    step = next(x for x in ls.load_all("en") if x.id == "convolution").steps[2]
    assert step.question.kind == "gradcam" and step.state["explain_test_index"] == step.question.params["index"]
    for lesson in ls.load_all("en") + ls.load_all("zh"):
        for s in lesson.steps:
            if s.page == "explain":
                assert "explain_source" in s.state and "explain_test_index" in s.state, (lesson.id, s.text[:40])
    at = opened("predict.py", "en", predict_model="fast-fashion-mnist", predict_test_index="3")
    at.switch_page("pages/explain.py")
    for k, v in step.query().items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="explain_source").value == "test"
    assert at.number_input(key="explain_test_index").value == 7



def test_a_step_s_link_carries_the_class_code_so_a_reloaded_student_keeps_counting():
    from karp_models.ui import lessons as ui_lessons

    at = AppTest.from_function(bound_panel_app, default_timeout=180)
    for k, v in {"lang": "en", "lesson": "recipe", "lesson_step": "1"}.items():
        at.query_params[k] = v
    at.session_state["lesson_class"] = "rl-9"
    at.run()
    next(b for b in at.button if b.key == "lesson_next").click().run()      # same page: Next sets the link
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["lesson_class"] in ("RL-9", ["RL-9"])
    reloaded = panel(lang="en", lesson="recipe", lesson_step="2", lesson_class="RL-9")   # a new tab, that link
    assert reloaded.session_state["lesson_class"] == "RL-9"
    answer_choice(reloaded, "Close to 0")
    assert dict(ui_lessons.class_answers().tally("RL-9", "recipe", 1)) == {"Close to 0": 1} or \
        sum(ui_lessons.class_answers().tally("RL-9", "recipe", 1).values()) == 1


def test_without_a_password_the_class_s_answers_wait_for_this_browser_s_answer(monkeypatch):
    monkeypatch.delenv("KARP_TEACHER_PASSWORD", raising=False)
    at = panel(lang="en", lesson="recipe", lesson_step="2")
    at.session_state["lesson_class"] = "PEEK-1"
    at.run()
    at.toggle(key="lesson_teacher_view_widget").set_value(True).run()
    assert not any("from class" in m.value for m in at.markdown)          # not before answering
    assert any("Answer the question first" in c.value for c in at.caption)
    answer_choice(at, "Still about 2.3")
    assert any("**1 answer** from class PEEK-1" in m.value or "from class PEEK-1" in m.value for m in at.markdown)


def test_with_a_password_the_lesson_offers_the_teacher_s_unlock(monkeypatch):
    monkeypatch.setenv("KARP_TEACHER_PASSWORD", "s3cret")
    at = panel(lang="en", lesson="recipe", lesson_step="2")
    at.session_state["lesson_class"] = "PW-1"
    at.run()
    assert not [t for t in at.toggle if t.key == "lesson_teacher_view_widget"]
    at.text_input(key="lesson_teacher_password").input("s3cret")
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t for t in at.toggle if t.key == "lesson_teacher_view_widget"]
    lessons_page = opened("lessons.py")
    assert not lessons_page.text_input(key="lessons_teacher_password").value


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_head_step_opens_intervene_on_the_text_and_behaviour_its_question_is_graded_on(lang):
    les = next(x for x in ls.load_all(lang) if x.id == "attention")
    i, step = next((i, s) for i, s in enumerate(les.steps) if s.question is not None and s.question.kind == "head")
    at = opened("intervene.py", lang, **step.query())
    assert at.text_area(key="intervene_text_shakespeare").value == step.question.params["text"]
    assert at.selectbox(key="intervene_behaviour").value == "closing a quote"      # quiz.head_ranking's
    assert at.radio(key="intervene_mode").value == "zero"


def test_the_teacher_s_chart_of_a_yes_no_question_speaks_the_lesson_s_language_and_marks_the_right_answer():
    at = panel(lang="zh", lesson="recipe", lesson_step="4")
    at.session_state["lesson_class"] = "LR-ZH"
    at.run()
    radio = next(r for r in at.radio if r.key and r.key.endswith("_yesno"))
    with using("zh"):                                   # AppTest formats the value in this process's language
        radio.set_value("no").run()
        next(b for b in at.button if b.key and b.key.endswith("_check")).click().run()
    at.toggle(key="lesson_teacher_view_widget").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    bars = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"][0]
    with using("zh"):
        yes, no = _("yes"), _("no")
    assert bars["x"] == [yes, no] and yes == "是" and "yes" not in bars["x"]
    assert dict(zip(bars["x"], bars["y"])) == {yes: 0, no: 1}
    assert bars["marker"]["color"] == ["#6b7280", "#22c55e"]         # lr 10 blows up: "no" is right


def test_a_class_code_is_shown_as_typed_never_as_markdown_and_one_answer_is_singular():
    code = "[HI](//E.CO)"
    at = panel(lang="en", lesson="recipe", lesson_step="2")
    at.session_state["lesson_class"] = code
    at.run()
    caption = next(c for c in at.caption if "Class code" in c.value).value
    assert "\\[HI\\]\\(//E.CO\\)" in caption                       # escaped: Markdown shows it as typed
    answer_choice(at, "Close to 0")
    at.toggle(key="lesson_teacher_view_widget").set_value(True).run()
    assert any(m.value.startswith("**1 answer** from class \\[HI\\]") for m in at.markdown), [m.value for m in at.markdown]
