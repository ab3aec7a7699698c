"""Compression: prune a trained image model and quantise it to int8, then see what each smaller
model costs in accuracy, what it saves in size and time, and whether its explanations change."""
import streamlit as st

from karp_models.data import DatasetMissing
from karp_models.i18n import _
from karp_models.ui import compression as ui
from karp_models.ui.loaders import class_names, dataset
from karp_models.ui.models import model_picker

st.title(_("Compress a model"))
st.markdown(_("##### How much smaller and faster can a trained network get, what does it cost in accuracy, "
              "and does it still look at the same pixels?"))

picked = model_picker("compression_model", task="image")
if picked is None:
    st.stop()
ck, choice = picked
try:
    ds = dataset(choice.dataset)
except DatasetMissing as e:                     # says in words where the data comes from
    st.error(str(e))
    st.stop()

cfg = ui.settings()
if cfg is None:
    st.stop()
sweep = ui.run(choice, cfg)
if sweep is None:
    st.stop()

ui.curves(sweep)
ui.table(sweep)
ui.explanations(sweep, class_names(ds.classes))
