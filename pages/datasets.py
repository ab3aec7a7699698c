"""Datasets: see the images and texts the models learn from, and where each comes from."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import style
from karp_models.ui.figures.datasets import class_counts, class_montage
from karp_models.ui.loaders import class_names, dataset, dataset_statuses, sample_photos

st.title(_("Datasets"))
statuses = {s.name: s for s in dataset_statuses() if s.kind in ("image", "text")}  # scenes: their own page
names = list(statuses)
name = st.selectbox(_("Dataset"), names, key="datasets_name", bind="query-params",
                    format_func=lambda n: n if statuses[n].available else _("{name} (missing)").format(name=n))
s = statuses[name]
if not s.available:
    st.error(_("**{name}** is not on this machine. {note}").format(name=name, note=s.note))
    st.code(s.how_to_get, language="bash")
    st.stop()

ds = dataset(name)
st.caption(_("Source: {source} · {note}").format(source=s.source, note=s.note) if s.note
           else _("Source: {source}").format(source=s.source))
if s.how_to_get:
    st.caption(_("For the full dataset: `{command}`").format(command=s.how_to_get))

if hasattr(ds, "classes"):
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Training images"), f"{len(ds.train_y):,}")
    c2.metric(_("Test images"), f"{len(ds.test_y):,}")
    c3.metric(_("Image size"), f"{ds.channels}×{ds.size[0]}×{ds.size[1]}")
    classes = class_names(ds.classes)
    style.chart(class_montage(ds.train_x, ds.train_y, classes,
                              seed=st.session_state.get("datasets_seed", 0)))
    if st.button(_("Show other examples"), key="datasets_shuffle"):
        st.session_state["datasets_seed"] = st.session_state.get("datasets_seed", 0) + 1
        st.rerun()
    style.chart(class_counts(ds.train_y, classes, _("Training images per class")))
else:
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Training characters"), f"{len(ds.train_ids):,}")
    c2.metric(_("Validation characters"), f"{len(ds.val_ids):,}")
    c3.metric(_("Vocabulary"), _("{n} characters").format(n=ds.vocab_size))
    start = st.slider(_("Position in the training text"), 0, max(0, len(ds.train_ids) - 2000), 0,
                      step=1000, key="datasets_pos", bind="query-params")
    st.text(ds.decode(ds.train_ids[start:start + 1500].tolist()))
    st.caption(_("Vocabulary: {chars}").format(chars=" ".join(repr(c)[1:-1] or "␣" for c in ds.vocab)))

st.subheader(_("Sample photographs"))
st.caption(_("Real photos from scikit-image, for trying the models on everyday pictures."))
photos = sample_photos()
with st.container(horizontal=True, gap="medium"):        # as many in a row as fit
    for pname, img in photos.items():
        st.image(img, caption=_(pname), width=style.px(190))
