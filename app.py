"""karp's entry point: page config, grouped navigation over pages/, the page CSS, presentation
mode and the device badge."""
import streamlit as st

from karp_models.ui import state, style
from karp_models.ui.widgets import device_badge

st.set_page_config(page_title="karp: look inside neural networks", page_icon=":material/biotech:",
                   layout="wide")

# icons from Streamlit's own Material font: emoji show as boxes on PCs without an emoji font
pages = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/datasets.py", title="Datasets", icon=":material/dataset:"),
    ],
    "Train and evaluate": [
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/own_classes.py", title="Your own classes", icon=":material/add_photo_alternate:"),
    ],
    "Images": [
        st.Page("pages/predict.py", title="Predict and look inside", icon=":material/image_search:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/lightbulb:"),
        st.Page("pages/vit_attention.py", title="ViT attention", icon=":material/grid_view:"),
    ],
    "Text": [
        st.Page("pages/text_attention.py", title="GPT attention", icon=":material/text_fields:"),
        st.Page("pages/generate.py", title="Generate text", icon=":material/edit_note:"),
        st.Page("pages/rnn_neurons.py", title="RNN neurons", icon=":material/neurology:"),
        st.Page("pages/seq2seq.py", title="Seq2seq attention", icon=":material/calendar_month:"),
    ],
}
nav = st.navigation(pages)
st.sidebar.toggle("Presentation mode", key=style.PRESENT_KEY,
                  help="Larger text, charts and pictures for a projector. Stays on while this "
                       "browser tab is open.")
style.page_css()
state.share_note()
device_badge()
nav.run()
