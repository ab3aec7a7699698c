"""karp's entry point: page config, grouped navigation over pages/, and the device badge."""
import streamlit as st

from karp_models.ui.widgets import device_badge

st.set_page_config(page_title="karp: look inside neural networks", page_icon="🔬", layout="wide")

pages = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/datasets.py", title="Datasets", icon="🗂️"),
    ],
    "Train and evaluate": [
        st.Page("pages/train.py", title="Train", icon="📈"),
        st.Page("pages/evaluate.py", title="Evaluate", icon="🎯"),
    ],
    "Images": [
        st.Page("pages/predict.py", title="Predict and look inside", icon="🖼️"),
        st.Page("pages/explain.py", title="Explain", icon="🔍"),
        st.Page("pages/vit_attention.py", title="ViT attention", icon="🧩"),
    ],
    "Text": [
        st.Page("pages/text_attention.py", title="GPT attention", icon="🔤"),
        st.Page("pages/generate.py", title="Generate text", icon="✍️"),
        st.Page("pages/rnn_neurons.py", title="RNN neurons", icon="🧠"),
        st.Page("pages/seq2seq.py", title="Seq2seq attention", icon="📅"),
    ],
}
nav = st.navigation(pages)
device_badge()
nav.run()
