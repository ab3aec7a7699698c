"""karp's entry point: page config, grouped navigation over pages/, and the device badge."""
import streamlit as st

from karp_models.ui.widgets import device_badge

st.set_page_config(page_title="karp: look inside neural networks", page_icon="🔬", layout="wide")

pages = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/datasets.py", title="Datasets", icon="🗂️"),
    ],
    "Train": [st.Page("pages/train.py", title="Train", icon="📈")],
}
nav = st.navigation(pages)
device_badge()
nav.run()
