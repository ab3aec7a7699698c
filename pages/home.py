"""Home: what karp does, where to start, the device, the datasets and the shipped models."""
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

st.subheader("Where to start")
for page, label, icon in [
    ("pages/predict.py", "**Predict and look inside**: upload, draw or snap an image; see the "
     "prediction, the feature maps and what a channel wants to see", "🖼️"),
    ("pages/explain.py", "**Explain**: which pixels mattered, by eight methods, and whether to "
     "trust them (sanity checks, faithfulness, adversarial examples)", "🔍"),
    ("pages/train.py", "**Train**: watch a network learn live, stop, resume, compare runs", "📈"),
    ("pages/evaluate.py", "**Evaluate**: confusion matrix, calibration, the mistakes, the "
     "embedding projector", "🎯"),
    ("pages/text_attention.py", "**GPT attention**, **Generate text**, **RNN neurons**: inside "
     "the language models trained on Shakespeare", "🔤"),
    ("pages/vit_attention.py", "**ViT attention** on image patches, and **Seq2seq attention** "
     "learning to read dates", "🧩"),
    ("pages/datasets.py", "**Datasets**: browse the images and texts the models learn from", "🗂️"),
]:
    st.page_link(page, label=label, icon=icon)
st.caption("From the command line: `python -m karp_models train --model fast --dataset fashion-mnist "
           "--minutes 2 --out runs/my-first-cnn.safetensors` trains a CNN; "
           "`python -m karp_models models` lists every model.")

st.subheader("This machine")
st.info(device_text(), icon="🖥️")

st.subheader("Datasets")
df = status_frame(dataset_statuses())
st.table(df[["dataset", "status", "splits", "source"]].set_index("dataset"))
for _, row in df[df["how to get it"] != ""].iterrows():
    what = "To get" if "missing" in row["status"] else "For all of"
    st.caption(f"{what} **{row['dataset']}**: `{row['how to get it']}`")

st.subheader("Shipped models")
wf = weights_frame()
if wf.empty:
    st.warning("No trained weights found in `weights/`. Train one with `python -m karp_models train`.")
else:
    st.table(wf.set_index("file"))
    st.caption("Quality is what `python -m karp_models train` measured on the held-out split; "
               "`python -m karp_models eval --weights FILE` recomputes it from the file alone.")
