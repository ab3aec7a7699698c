"""karp's entry point: page config, the language, grouped navigation over pages/, the page CSS,
presentation mode, the device badge and this browser's work identity."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import identity, language, lessons, state, style, training
from karp_models.ui.widgets import device_badge

st.set_page_config(page_title=_("karp: look inside neural networks"), page_icon=":material/biotech:",
                   layout="wide")
language.switch()

# icons from Streamlit's own Material font: emoji show as boxes on PCs without an emoji font;
# a page's address comes from its file name, so it is the same in every language
pages = {
    _("Start"): [
        st.Page("pages/home.py", title=_("Home"), icon=":material/home:", default=True),
        st.Page("pages/lessons.py", title=_("Lessons"), icon=":material/school:"),
        st.Page("pages/datasets.py", title=_("Datasets"), icon=":material/dataset:"),
    ],
    _("Train and evaluate"): [
        st.Page("pages/train.py", title=_("Train"), icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title=_("Evaluate"), icon=":material/fact_check:"),
        st.Page("pages/own_classes.py", title=_("Your own classes"), icon=":material/add_photo_alternate:"),
        st.Page("pages/compression.py", title=_("Compression"), icon=":material/compress:"),
    ],
    _("Images"): [
        st.Page("pages/predict.py", title=_("Predict and look inside"), icon=":material/image_search:"),
        st.Page("pages/explain.py", title=_("Explain"), icon=":material/lightbulb:"),
        st.Page("pages/vit_attention.py", title=_("ViT attention"), icon=":material/grid_view:"),
        st.Page("pages/generate_images.py", title=_("Generate images"), icon=":material/palette:"),
        st.Page("pages/captioning.py", title=_("Image captioning"), icon=":material/subtitles:"),
    ],
    _("Text"): [
        st.Page("pages/text_attention.py", title=_("GPT attention"), icon=":material/text_fields:"),
        st.Page("pages/generate.py", title=_("Generate text"), icon=":material/edit_note:"),
        st.Page("pages/rnn_neurons.py", title=_("RNN neurons"), icon=":material/neurology:"),
        st.Page("pages/intervene.py", title=_("Knock it out"), icon=":material/content_cut:"),
        st.Page("pages/seq2seq.py", title=_("Seq2seq attention"), icon=":material/calendar_month:"),
    ],
    _("Agents"): [
        st.Page("pages/rl.py", title=_("Reinforcement learning"), icon=":material/sports_esports:"),
    ],
}
nav = st.navigation(pages, expanded=True)   # every page in view: a class follows the teacher's clicks
# in the top bar (style.PAGE_CSS places it): always in reach, however long the sidebar's list
style.present_switch(_("Presentation mode"),
                     help=_("Larger text, charts and pictures for a projector. Stays on while this "
                            "browser tab is open."))
style.page_css()
state.share_note()
device_badge()
identity.remember()                     # this browser's work id, kept in its cookie
training.note_tab()                     # its runs stay alive while any of its tabs is open
lessons.showing(nav)
active = lessons.current()               # a guided lesson: its step in a column beside the live view
if active is not None:
    side, main = st.columns([1, 2.75], gap="medium")
    with side:
        lessons.panel(*active)
else:
    main = st.container()
with main, state.LinkCheck():            # a warning for each part of a link the page cannot show
    nav.run()
