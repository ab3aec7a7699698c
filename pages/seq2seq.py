"""Seq2seq attention: train a date translator live and watch its alignment matrix sharpen, then
type any date (issue 7, item 5; Bahdanau, Cho and Bengio 2015).

Why training runs here, in the page's script, and not as a background job: a run takes about a
minute at most and belongs to one person's tab, with nothing to queue, save or resume in another tab.
The loop has a step budget and redraws into st.empty placeholders every 20 steps; each session's
script runs in its own thread and torch releases the GIL in its kernels, so other sessions stay
responsive, and it uses the app's torch threads (1 on a 2-core machine, leaving a core free).
Closing the tab or clicking anything stops the script, and so the training: no orphan job keeps a
core busy. The Trainer (model, optimizer, data stream) lives in st.session_state, so pressing
Train again continues where it stopped.
"""
import streamlit as st

from karp_models.data import dates
from karp_models.i18n import _
from karp_models.train.tasks.seq2seq import translate
from karp_models.ui import seq2seq as ui
from karp_models.ui import style, teacher

st.title(_("Seq2seq attention"))
st.caption(_("An encoder reads a date written the way people write it, one character at a time; a "
             "decoder writes it in ISO form, 2021-03-03. Before each character it writes, the "
             "decoder looks back at the input (additive attention, Bahdanau et al. 2015): the "
             "**alignment matrix** shows where. Train it here, live, and watch it learn to look at "
             "the right characters."))
style.projector_css()

run = ui.get_run()
steps = run.budget
c1, c2, _space = st.columns([2, 1, 2])
train = c1.button(ui.train_label(run), type="primary", key="seq2seq_train", icon=":material/play_arrow:",
                  width="stretch", disabled=not teacher.unlocked())
c2.button(_("Start over"), key="seq2seq_reset", on_click=ui.reset_run, width="stretch",
          disabled=run.step == 0)
st.caption(_("Training runs right here, on this page, with one CPU thread; the charts redraw every "
             "20 steps. Clicking anything else pauses it: press Train again to continue."))
teacher.gate(_("train here"), key="seq2seq_teacher")
progress = st.empty()
status = st.empty()
left, right = st.columns(2, gap="large")
curves, align = left.empty(), right.empty()

if train and teacher.unlocked():
    ui.train_live(run, steps, status, progress, curves, align)
    st.rerun()                                  # the button now says how long the steps took
else:
    ui.draw(run, status, curves, align)

if run.step:
    with st.expander(_("The same example before training (random weights)")):
        st.markdown(f"{run.example} → `{run.first.output}`")
        style.chart(ui.alignment_figure(run.first, height=400),
                    width="stretch", config={"displayModeBar": False}, key="seq2seq_before")

# --- try it

st.subheader(_("Try it: type a date"))
text = st.text_input(_("A date, written any way (lower-cased; at most 40 characters)"),
                     value="mar 3, 21", key="seq2seq_text", bind="query-params")
source = ui.read_date(text)                     # what the model reads: unknown characters listed, not "?"
if not source:
    st.info(_("The model read none of it. Type a date in digits, English month names or Chinese "
              "(2026年11月30日)."))
else:
    tr = translate(run.model, source)
    st.html(ui.translation_html(tr))
    if dates.parse_iso(tr.output):
        st.markdown(_("A real date. Whether it is *your* date: slashes are read American "
                      "(month/day/year), dots and numeric dashes European (day.month.year), and "
                      "two-digit years mean 1950 to 2049."))
    else:
        st.markdown(_("Not a valid ISO date yet: train the model first.") if run.step == 0
                    else _("Not a valid ISO date."))
    st.markdown(_("**Where it looked while writing each character**"))
    style.chart(ui.alignment_figure(tr, height=460),
                width="stretch", config={"displayModeBar": False}, key="seq2seq_try")

with st.expander(_("Held-out dates (never seen in training) and the formats it learns")):
    st.dataframe(style.right_wrong(ui.examples_table(run, dates.examples(10, seed=7, split="val")),
                                   _("result")), hide_index=True, width="stretch")
    st.markdown(_("Formats: {formats}").format(formats=" · ".join(
        f"`{dates.write_date(dates.dt.date(2021, 3, 3), f)}`" for f, _weight in dates.FORMATS)))
