"""ViT attention: where the Vision Transformer's CLS token looks, per layer and head, and attention
rollout over all layers (Abnar and Zuidema 2020), drawn on the image (issue 7, item 4)."""
import streamlit as st

from karp_models.introspect.vit import vit_attention
from karp_models.ui import glossary, selection, style
from karp_models.ui.figures import vit as views
from karp_models.ui.images import grey
from karp_models.ui.loaders import dataset
from karp_models.ui.models import model_picker

st.title("ViT attention")
st.caption(glossary.hover(
    "A Vision Transformer cuts the image into patches and adds one extra token, **CLS**, "
    "whose final state is classified. Each map shows how much CLS attends to each patch: "
    "bright is where it looks.", "patch", "attention"), unsafe_allow_html=True)
style.projector_css()

picked = model_picker("vit_attention_model", models=("vit",), default="vit-fashion-mnist")
if picked is None:
    st.stop()
ck, choice = picked
ds = dataset(choice.dataset)
classes = list(ck.meta.get("classes") or ds.classes)

# --- which image, the prediction and rollout

left, right = st.columns([1, 2], gap="large")
with left:
    shared = selection.get_image(ds.name)
    use_shared = shared is not None and st.radio(
        "Image", ["The image from Predict / Explain", "A test image"], key="vit_attention_source",
        bind="query-params").startswith("The image")
    if use_shared:
        inp = shared
    else:
        index = st.number_input(f"Test image (0 to {len(ds.test_y) - 1:,})", 0, len(ds.test_y) - 1,
                                value=0, step=1, key="vit_attention_index", bind="query-params")
        inp = selection.test_image(ds, index)
    att = vit_attention(ck.model, inp.x)
    pred = int(att.probs.argmax())
    verdict = ("" if inp.label is None else f", {style.mark(True)}" if pred == inp.label
               else f", {style.mark(False)}: it is a **{classes[inp.label]}**")
    st.markdown(f"{inp.source} → **{classes[pred]}**{verdict}")
    style.chart(views.prediction_figure(att.probs, classes, inp.label), width="stretch",
                config={"displayModeBar": False}, key="vit_attention_pred")
    smooth = st.toggle("Smooth patches", value=True, key="vit_attention_smooth", bind="query-params",
                       help="Bilinear upsampling of the patch maps; off shows each patch as a block.")
    st.caption(f"{att.grid[0]} × {att.grid[1]} patches of {att.patch_size} × {att.patch_size} "
               f"pixels, {att.n_layer} layers × {att.n_head} heads.")

image = grey(inp.x)
with right:
    st.subheader("Attention rollout: all layers together")
    style.chart(views.rollout_figure(image, att, smooth=smooth), width="stretch",
                config={"displayModeBar": False}, key="vit_attention_rollout")
    st.markdown(glossary.hover(
        "One layer's map only says what CLS reads from the tokens **of that layer**, which are "
        "already mixtures of patches. **Rollout** follows the flow back to the pixels: it averages "
        "the heads, adds the skip connection, (A + I) / 2, and multiplies the layers, first to "
        f"last. Here {att.rollout_self:.0%} of the flow stays on CLS itself; the rest is the map.",
        "rollout", "patch"), unsafe_allow_html=True)

# --- per layer and head

st.subheader("CLS attention per layer (rows) and head (columns)")
shared_scale = st.toggle("One colour scale for all maps (else each map to its own maximum)",
                         value=False, key="vit_attention_shared_scale", bind="query-params")
style.chart(views.head_grid_figure(image, att, smooth=smooth, shared_scale=shared_scale),
            width="stretch", config={"displayModeBar": False}, key="vit_attention_grid")
st.caption("“CLS keeps” is the share of the head's attention on the CLS token itself, which no "
           "patch map shows. Heads that keep most of it contribute little to that layer. Raw "
           "attention is not an explanation by itself (Jain and Wallace 2019; Chefer et al. "
           "2021): compare it with the gradient-based maps on the Explain page.")
