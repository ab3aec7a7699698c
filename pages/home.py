"""Home: what karp does, one clear first step for a class, the other pages, then the device,
the datasets and the shipped models."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui.loaders import dataset_statuses, status_frame, weights_frame
from karp_models.ui.widgets import device_line

st.title(_("karp: look inside neural networks"))
st.markdown(_(
    "karp trains small **CNNs**, **RNN / LSTM / GRU** language models and **attention** models "
    "(a character-level GPT, a tiny ViT) on your GPU or CPU, or loads the well-trained ones that "
    "ship with it, so a class can see what happens inside them. Everything runs on this machine; "
    "no network is needed."))

with st.container(border=True):
    st.subheader(_("Start here: a first lesson in three steps"))
    st.markdown(_("A network trained on photos of clothes looks at one picture. Follow the steps "
                  "in order; each takes a few minutes with a class."))
    c1, c2, c3 = st.columns(3)
    with c1:
        if st.button(_("1. See it recognise a picture"), icon=":material/image_search:",
                     type="primary", key="home_start", width="stretch"):   # the one first step
            st.switch_page("pages/predict.py")
        st.caption(_("Pick a test image and watch it become the network's input, its answer and "
                     "what each layer sees."))
    with c2:
        st.page_link("pages/explain.py", label=_("2. Ask which pixels mattered"),
                     icon=":material/lightbulb:", width="stretch")
        st.caption(_("Eight methods colour the pixels that pushed the answer, and three checks "
                     "say whether to trust them."))
    with c3:
        st.page_link("pages/train.py", label=_("3. Train one and watch it learn"),
                     icon=":material/model_training:", width="stretch")
        st.caption(_("Start a run: the loss falls and the guesses on test images turn green, live, "
                     "in about a minute."))
    st.caption(_("On a projector, switch on **Presentation mode** in the sidebar: larger text, "
                 "charts and pictures."))
    st.page_link("pages/lessons.py", label=_("Guided lessons: the class predicts, the live model answers"),
                 icon=":material/school:")

st.subheader(_("Everything else"))
left, right = st.columns(2)
with left:
    st.page_link("pages/evaluate.py", label=_("Evaluate: where a model goes wrong and how sure it is"),
                 icon=":material/fact_check:")
    st.page_link("pages/vit_attention.py", label=_("ViT attention: where a vision transformer looks"),
                 icon=":material/grid_view:")
    st.page_link("pages/datasets.py", label=_("Datasets: the images and texts the models learn from"),
                 icon=":material/dataset:")
    st.page_link("pages/rl.py", label=_("Play: an agent learns Pong by trial and error"),
                 icon=":material/sports_esports:")
with right:
    st.page_link("pages/text_attention.py", label=_("GPT attention: which earlier characters each one reads"),
                 icon=":material/text_fields:")
    st.page_link("pages/generate.py", label=_("Generate text: the next-character guesses"),
                 icon=":material/edit_note:")
    st.page_link("pages/rnn_neurons.py", label=_("RNN neurons: cells that track quotes and lines"),
                 icon=":material/neurology:")
    st.page_link("pages/seq2seq.py", label=_("Seq2seq attention: a network learns to read dates"),
                 icon=":material/calendar_month:")

st.subheader(_("This machine"))
st.info(device_line(), icon=":material/computer:")

st.subheader(_("Datasets"))
statuses = dataset_statuses()
st.table(status_frame(statuses))

st.subheader(_("Shipped models"))
wf = weights_frame()
if wf.empty:
    st.warning(_("No trained weights found in `weights/`. Train one on the **Train** page."))
else:
    st.table(wf)
    st.caption(_("Quality is what the training command measured on the held-out split."))

with st.expander(_("For developers: the command line")):
    st.markdown(_("Train a CNN, list every model, recompute a model's quality:"))
    st.code("python -m karp_models train --model fast --dataset fashion-mnist --minutes 2 "
            "--out runs/my-first-cnn.safetensors\npython -m karp_models models\n"
            "python -m karp_models eval --weights weights/fast-fashion-mnist.safetensors",
            language="bash")
    for s in statuses:
        if s.how_to_get:
            st.markdown((_("For all of **{name}**:") if s.available else _("To get **{name}**:")).format(name=s.name))
            st.code(s.how_to_get, language="bash")
