"""The lesson player: a lesson's step beside the live view it opens, with back and next, its question
answered and graded by the live model, and, for a teacher, the class's answers gathered (counts only).

A step opens its page through the page's own link state (st.switch_page with the step's query
parameters, exactly what a shared link carries), so every step is reproducible by its address; the lesson
and step ride along as `?lesson=...&lesson_step=...` and in the session. app.py puts the panel in a
column beside the page while a lesson is active. Answers of every browser on this server meet in one
process-wide store (st.cache_resource) under a class code; a teacher sees the tally, never who answered.
"""
from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import streamlit as st

from karp_models import lessons as ls
from karp_models.i18n import _, ngettext
from karp_models.introspect import quiz
from karp_models.ui import language, style, teacher
from karp_models.ui import lesson_questions as lq
from karp_models.ui.figures import lessons as figs

LESSON, STEP = "lesson", "lesson_step"         # the link's parameters (state.NOT_SETTINGS)
CLASS_PARAM = "lesson_class"                    # the link's class code (state.NOT_SETTINGS)
ACTIVE = "lesson_active"                        # session: (lesson id, step index)
CLASS = "lesson_class"                          # session: the class code typed on the Lessons page
VOTER = "lesson_voter"                          # session: an anonymous token, so a changed answer counts once
TEACHER_VIEW = "lesson_teacher_view"            # session: show the class's answers (its widget: ..._toggle)
SCROLL_TOP = "lesson_scroll_top"                # session: a step was just opened, show it from the top
REFRESH_S = 2.0


@st.cache_resource
def class_answers() -> ls.ClassAnswers:
    """The one store of every session's answers in this server process."""
    return ls.ClassAnswers()


@st.cache_data(ttl=60, show_spinner=False)
def all_lessons(lang: str) -> list[ls.Lesson]:
    return ls.load_all(lang)


def lesson_lang() -> str:
    return "zh" if (language.current() or "en").startswith("zh") else "en"


def find(lesson_id: str) -> ls.Lesson | None:
    return next((les for les in all_lessons(lesson_lang()) if les.id == lesson_id), None)


def current() -> tuple[ls.Lesson, int] | None:
    """The active lesson and step: the link's first (a step opened from its address), else the session's."""
    lid, raw = st.query_params.get(LESSON), st.query_params.get(STEP)
    code = (st.query_params.get(CLASS_PARAM) or "").strip()[:12]
    if code and code.upper() != class_code():          # a reloaded or shared step keeps counting its class
        st.session_state[CLASS] = st.session_state[f"{CLASS}_widget"] = code
    if lid:
        try:
            i = int(raw or 1) - 1
        except ValueError:
            i = 0
        st.session_state[ACTIVE] = (lid, i)
    lid, i = st.session_state.get(ACTIVE, (None, 0))
    lesson = find(lid) if lid else None
    if lesson is None:
        st.session_state.pop(ACTIVE, None)
        return None
    i = min(max(i, 0), len(lesson.steps) - 1)
    st.session_state[ACTIVE] = (lesson.id, i)
    return lesson, i


def step_link(lesson: ls.Lesson, i: int) -> dict[str, str]:
    """The query parameters that open step i (0-based) of `lesson`: its page's state, lesson, step, language."""
    link = {**lesson.steps[i].query(), LESSON: lesson.id, STEP: str(i + 1),
            language.PARAM: language.current() or "en"}
    if class_code():
        link[CLASS_PARAM] = class_code()
    return link


CURRENT = "lesson_page"                         # session: the page this run shows (app.py sets it)


def showing(nav) -> None:
    """Tell the player which page this run shows (app.py, with st.navigation's page, before the panel): a
    step on the same page cannot go through st.switch_page's link, since its widgets hold their parameters."""
    page = getattr(nav, "_page", None)          # StreamlitPage's file (Streamlit 1.67 keeps it there)
    st.session_state[CURRENT] = Path(page).stem if isinstance(page, (str, Path)) else None


def go(lesson: ls.Lesson, i: int) -> None:
    """Open step i: its page in its state (raises Streamlit's rerun)."""
    st.session_state[ACTIVE] = (lesson.id, i)
    st.session_state[SCROLL_TOP] = True
    step, link = lesson.steps[i], step_link(lesson, i)
    if step.page != st.session_state.get(CURRENT):
        st.switch_page(f"pages/{step.page}.py", query_params=link)
    for key, raw in step.query().items():        # the same page: its widgets take the values directly
        _set_bound(key, raw)
    for key in (LESSON, STEP, CLASS_PARAM):
        if key in link:
            st.query_params[key] = link[key]
    st.rerun()


def _set_bound(key: str, raw: str) -> None:
    """Give widget `key` (bound to the link) the value the link text `raw` means, read as Streamlit reads a
    link (the widget's own deserializer; Streamlit 1.67's internals, as state._means_default). Where that is
    not possible, forget the widget's value: it starts again from its default."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import (
            get_script_run_ctx,
        )
        from streamlit.runtime.state.query_params import parse_url_param

        inner = get_script_run_ctx().session_state._state
        meta = inner._new_widget_state.widget_metadata[inner._key_id_mapper.get_id_from_key(key)]
        st.session_state[key] = meta.deserializer(parse_url_param([raw], meta.value_type))
    except Exception:                   # noqa: BLE001 - another Streamlit, or no such widget yet
        st.session_state.pop(key, None)


def end() -> None:
    st.session_state.pop(ACTIVE, None)
    for k in (LESSON, STEP, CLASS_PARAM):
        st.query_params.pop(k, None)


MARKDOWN_CHARS = "\\`*_{}[]()<>#+!|~:$"            # ("-" and "." matter only at a line's start)


def plain(text: str) -> str:
    """`text` shown as typed inside Markdown: its Markdown characters escaped (a class code such as
    `[hi](//e.co)` stays words, not a link)."""
    return "".join("\\" + c if c in MARKDOWN_CHARS else c for c in text)


def voter() -> str:
    if VOTER not in st.session_state:
        st.session_state[VOTER] = uuid.uuid4().hex
    return st.session_state[VOTER]


def class_code() -> str:
    return (st.session_state.get(CLASS) or "").strip().upper()

# ---------------------------------------------------------------------------- the panel


# while a lesson runs, its Back and Next are the way on: the sidebar's page list gives up some width to
# the page beside the step (Streamlit's sidebar is 300 px; a person may still drag it wider)
LESSON_CSS = """<style>
section[data-testid="stSidebar"][data-collapsed="false"] {width: 244px !important; min-width: 244px !important;}
</style>"""
# on a projector the lesson is the way on: the page list steps aside (Presentation mode off brings it back)
PRESENT_LESSON_CSS = """<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] {display: none !important;}
</style>"""


def scroll_to_top() -> None:
    """Scroll the page to its top (a step just opened: the browser keeps the last page's scroll), again
    while the page's parts arrive and make it taller."""
    st.html("""<script>
    // """ + uuid.uuid4().hex + """: a new script each time, so the browser runs it again
    [0, 150, 400, 800, 1300, 2000, 3000].forEach(ms => setTimeout(() => {
      const doc = window.parent.document || document;
      doc.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], '
                           + '[data-testid="stAppScrollToBottomContainer"]').forEach(el => el.scrollTo(0, 0));
      (window.parent || window).scrollTo(0, 0);
    }, ms));
    </script>""", unsafe_allow_javascript=True)


def panel(lesson: ls.Lesson, i: int) -> None:
    """The step beside the live view: where we are, the text, the question, back / next, the class view."""
    st.html(PRESENT_LESSON_CSS if style.presenting() else LESSON_CSS)
    if st.session_state.pop(SCROLL_TOP, False):
        scroll_to_top()
    step, n = lesson.steps[i], len(lesson.steps)
    st.caption(_("Lesson: {title} · step {step} of {total}").format(title=lesson.title, step=i + 1, total=n))
    st.progress((i + 1) / n)
    st.markdown(step.text)
    if step.question is not None:
        question(lesson, i, step.question)
    back, nxt = st.columns(2)
    if back.button(_("Back"), key="lesson_back", icon=":material/arrow_back:", disabled=i == 0, width="stretch"):
        go(lesson, i - 1)
    if i + 1 < n:
        if nxt.button(_("Next"), key="lesson_next", icon=":material/arrow_forward:", type="primary", width="stretch"):
            go(lesson, i + 1)
    elif nxt.button(_("Finish"), key="lesson_finish", icon=":material/check:", type="primary", width="stretch"):
        end()                   # as Leave: st.switch_page cannot clear the parameters the page's widgets hold
        st.toast(_("Lesson finished: the Lessons page lists the others."), icon=":material/check:")
        st.rerun()
    again, leave = st.columns(2)
    if again.button(_("Reset the view"), key="lesson_again", icon=":material/refresh:", type="tertiary",
                    help=_("Open this step's view again as the lesson set it")):
        go(lesson, i)
    if leave.button(_("Leave the lesson"), key="lesson_leave", icon=":material/close:", type="tertiary"):
        end()
        st.rerun()
    code = class_code()
    if code:
        st.caption(_("Class code {code}: your answers are counted with your class's, without your name.").format(
            code=plain(code)))
        if step.question is not None and teacher.unlocked() and _sticky(
                st.toggle, TEACHER_VIEW, False, _("Teacher: show the class's answers")):
            if teacher.enabled() or _answer_key(lesson, i) in st.session_state:
                class_view(lesson, i, code)
            else:                   # no password: anyone may switch it on, so nobody peeks before answering
                st.caption(_("Answer the question first: then the class's answers are shown. (With a teacher "
                             "password set on the server, an unlocked teacher sees them at once.)"))
        elif step.question is not None and not teacher.unlocked():
            with st.popover(_("Teacher"), icon=":material/lock:"):
                teacher.gate(_("see the class's answers"), key="lesson_teacher")


def _sticky(widget, plain: str, default, label: str, **kw):
    """A widget whose value outlives the page (Streamlit forgets a widget's value when its page is left):
    kept under the plain session key `plain`, given back to the widget on every page."""
    key = f"{plain}_widget"
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(plain, default)
    value = widget(label, key=key, **kw)
    st.session_state[plain] = value
    return value


def _answer_key(lesson: ls.Lesson, i: int) -> str:
    return f"lesson_answer_{lesson.id}_{i}"


def question(lesson: ls.Lesson, i: int, q: ls.Question) -> None:
    """The question, the learner's answer, and once answered, the live model's verdict."""
    with st.container(border=True):
        st.markdown(f"**{q.prompt}**")
        key = _answer_key(lesson, i)
        given = st.session_state.get(key)
        if given is None:                               # ask; once answered, the verdict takes its place
            slot = st.empty()
            with slot.container():
                given = lq.ASK[q.kind](q, key)
            if given is not None:
                slot.empty()
                st.session_state[key] = given
                if class_code():
                    class_answers().record(class_code(), lesson.id, i, voter(), given)
        if given is not None:
            lq.GRADE[q.kind](q, given)
            if q.explain:
                st.markdown(q.explain)
            if st.button(_("Answer again"), key=f"{key}_again", icon=":material/undo:", type="tertiary"):
                st.session_state.pop(key, None)
                st.session_state.pop(f"{key}_cell", None)
                st.rerun()


# ---------------------------------------------------------------------------- the class's answers


def class_view(lesson: ls.Lesson, i: int, code: str) -> None:
    """The class's answers to this step, refreshed every REFRESH_S seconds: counts and a histogram."""
    q = lesson.steps[i].question

    @st.fragment(run_every=REFRESH_S)
    def live() -> None:
        counts = class_answers().tally(code, lesson.id, i)
        n = sum(counts.values())
        st.markdown(ngettext("**{n} answer** from class {code}", "**{n} answers** from class {code}", n).format(
            n=n, code=plain(code)))
        if not n:
            st.caption(_("No answers yet: students type the class code on the Lessons page."))
            return
        if q.kind == "gradcam":
            fig = figs.click_tally(lq.test_image(q)[0], counts, quiz.GRID, height=240)
        else:
            labels = [str(o) for o in q.params["options"]] if "options" in q.params else (
                [lq.label(q, k) for k in lq.YES_NO] if q.kind == "lr" else None)
            right = lq.truth(q)
            fig = figs.tally_bars(Counter({lq.label(q, k): v for k, v in counts.items()}), labels,
                                  right=None if right is None else lq.label(q, right), height=220)
        style.chart(fig, key=f"lesson_tally_{lesson.id}_{i}", config={"displayModeBar": False})
        st.caption(_("Counts only: nobody's name or browser is shown."))
    live()

# ---------------------------------------------------------------------------- the Lessons page


def catalogue() -> None:
    """Every lesson as a card with its summary, steps and a start button."""
    found = all_lessons(lesson_lang())
    if not found:
        st.warning(_("No lessons found in the lessons/ folder."))
        return
    cols = st.columns(2)
    for k, les in enumerate(found):
        with cols[k % 2].container(border=True, key=f"lesson_card_{les.id}"):
            st.subheader(les.title)
            st.markdown(les.summary)
            asks = sum(s.question is not None for s in les.steps)
            st.caption(_("{steps} steps, {questions} questions").format(steps=len(les.steps), questions=asks))
            if st.button(_("Start this lesson"), key=f"lesson_start_{les.id}", icon=":material/play_arrow:",
                         type="primary" if k == 0 else "secondary"):
                go(les, 0)


def class_box() -> None:
    """The class code: students type the teacher's code; their answers are then counted together."""
    with st.container(border=True):
        c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
        with c1:
            _sticky(st.text_input, CLASS, "", _("Class code"), max_chars=12, placeholder=_("e.g. 7B"),
                    help=_("Type the code your teacher gives. Answers are counted for the whole class, "
                             "without names."))
        c2.caption(_("Teacher: pick any short code and write it on the board. During a lesson, switch on "
                     "**Teacher: show the class's answers** beside a question to see how the class answered."
                     ) + (" " + _("This server has a teacher password: only an unlocked browser sees the answers.")
                          if teacher.enabled() else ""))
        if teacher.enabled():
            teacher.gate(_("see the class's answers"), key="lessons_teacher")

