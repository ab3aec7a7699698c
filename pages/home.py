"""Home: what karp does, one clear first step for a class, the other pages, then the device,
the datasets and the shipped models."""
import streamlit as st

from karp_models.ui.loaders import dataset_statuses, status_frame, weights_frame
from karp_models.ui.widgets import device_text

st.title("karp: look inside neural networks")
st.markdown(
    "karp trains small **CNNs**, **RNN / LSTM / GRU** language models and **attention** models "
    "(a character-level GPT, a tiny ViT) on your GPU or CPU, or loads the well-trained ones that "
    "ship with it, so a class can see what happens inside them. Everything runs on this machine; "
    "no network is needed."
)

with st.container(border=True):
    st.subheader("Start here: a first lesson in three steps")
    st.markdown("A network trained on photos of clothes looks at one picture. Follow the steps "
                "in order; each takes a few minutes with a class.")
    c1, c2, c3 = st.columns(3)
    with c1:
        if st.button("1. See it recognise a picture", icon=":material/image_search:",
                     type="primary", key="home_start", width="stretch"):   # the one first step
            st.switch_page("pages/predict.py")
        st.caption("Pick a test image and watch it become the network's input, its answer and "
                   "what each layer sees.")
    with c2:
        st.page_link("pages/explain.py", label="2. Ask which pixels mattered",
                     icon=":material/lightbulb:", width="stretch")
        st.caption("Eight methods colour the pixels that pushed the answer, and three checks "
                   "say whether to trust them.")
    with c3:
        st.page_link("pages/train.py", label="3. Train one and watch it learn",
                     icon=":material/model_training:", width="stretch")
        st.caption("Start a run: the loss falls and the guesses on test images turn green, live, "
                   "in about a minute.")
    st.caption("On a projector, switch on **Presentation mode** in the sidebar: larger text, "
               "charts and pictures.")

st.subheader("Everything else")
left, right = st.columns(2)
with left:
    st.page_link("pages/evaluate.py", label="Evaluate: where a model goes wrong and how sure it is",
                 icon=":material/fact_check:")
    st.page_link("pages/vit_attention.py", label="ViT attention: where a vision transformer looks",
                 icon=":material/grid_view:")
    st.page_link("pages/datasets.py", label="Datasets: the images and texts the models learn from",
                 icon=":material/dataset:")
with right:
    st.page_link("pages/text_attention.py", label="GPT attention: which earlier characters each "
                 "one reads", icon=":material/text_fields:")
    st.page_link("pages/generate.py", label="Generate text: the next-character guesses",
                 icon=":material/edit_note:")
    st.page_link("pages/rnn_neurons.py", label="RNN neurons: cells that track quotes and lines",
                 icon=":material/neurology:")
    st.page_link("pages/seq2seq.py", label="Seq2seq attention: a network learns to read dates",
                 icon=":material/calendar_month:")

st.subheader("This machine")
st.info(device_text(), icon=":material/computer:")

st.subheader("Datasets")
df = status_frame(dataset_statuses())
st.table(df[["dataset", "status", "splits", "source"]].set_index("dataset"))

st.subheader("Shipped models")
wf = weights_frame()
if wf.empty:
    st.warning("No trained weights found in `weights/`. Train one on the **Train** page.")
else:
    st.table(wf.set_index("file"))
    st.caption("Quality is what the training command measured on the held-out split.")

with st.expander("For developers: the command line"):
    st.markdown("Train a CNN, list every model, recompute a model's quality:")
    st.code("python -m karp_models train --model fast --dataset fashion-mnist --minutes 2 "
            "--out runs/my-first-cnn.safetensors\npython -m karp_models models\n"
            "python -m karp_models eval --weights weights/fast-fashion-mnist.safetensors",
            language="bash")
    for _, row in df[df["how to get it"] != ""].iterrows():
        what = "To get" if row["status"] == "missing" else "For all of"
        st.markdown(f"{what} **{row['dataset']}**:")
        st.code(row["how to get it"], language="bash")
