"""Datasets: see the images and texts the models learn from, and where each comes from."""
import streamlit as st

from karp_models.ui import style
from karp_models.ui.figures.datasets import class_counts, class_montage
from karp_models.ui.loaders import dataset, dataset_statuses, sample_photos

st.title("Datasets")
statuses = {s.name: s for s in dataset_statuses() if s.kind in ("image", "text")}  # scenes: their own page
names = list(statuses)
name = st.selectbox("Dataset", names, key="datasets_name", bind="query-params",
                    format_func=lambda n: n if statuses[n].available else f"{n} (missing)")
s = statuses[name]
if not s.available:
    st.error(f"**{name}** is not on this machine. {s.note}")
    st.code(s.how_to_get, language="bash")
    st.stop()

ds = dataset(name)
st.caption(f"Source: {ds.source}" + (f" · {ds.note}" if ds.note else ""))
if s.how_to_get:
    st.caption(f"For the full dataset: `{s.how_to_get}`")

if hasattr(ds, "classes"):
    c1, c2, c3 = st.columns(3)
    c1.metric("Training images", f"{len(ds.train_y):,}")
    c2.metric("Test images", f"{len(ds.test_y):,}")
    c3.metric("Image size", f"{ds.channels}×{ds.size[0]}×{ds.size[1]}")
    style.chart(class_montage(ds.train_x, ds.train_y, ds.classes,
                              seed=st.session_state.get("datasets_seed", 0)))
    if st.button("Show other examples", key="datasets_shuffle"):
        st.session_state["datasets_seed"] = st.session_state.get("datasets_seed", 0) + 1
        st.rerun()
    style.chart(class_counts(ds.train_y, ds.classes, "Training images per class"))
else:
    c1, c2, c3 = st.columns(3)
    c1.metric("Training characters", f"{len(ds.train_ids):,}")
    c2.metric("Validation characters", f"{len(ds.val_ids):,}")
    c3.metric("Vocabulary", f"{ds.vocab_size} characters")
    start = st.slider("Position in the training text", 0, max(0, len(ds.train_ids) - 2000), 0,
                      step=1000, key="datasets_pos", bind="query-params")
    st.text(ds.decode(ds.train_ids[start:start + 1500].tolist()))
    st.caption("Vocabulary: " + " ".join(repr(c)[1:-1] or "␣" for c in ds.vocab))

st.subheader("Sample photographs")
st.caption("Real photos from scikit-image, for trying the models on everyday pictures.")
photos = sample_photos()
with st.container(horizontal=True, gap="medium"):        # as many in a row as fit
    for pname, img in photos.items():
        st.image(img, caption=pname, width=style.px(190))
