"""ViT attention: where the Vision Transformer's CLS token looks, per layer and head, and attention
rollout over all layers (Abnar and Zuidema 2020), drawn on the image (issue 7, item 4)."""
import streamlit as st

from karp_models.i18n import N_, _
from karp_models.introspect.vit import vit_attention
from karp_models.ui import glossary, selection, style
from karp_models.ui.figures import vit as views
from karp_models.ui.images import grey
from karp_models.ui.intervene import vit_knockout_section
from karp_models.ui.loaders import class_names, dataset
from karp_models.ui.models import model_picker

st.title(_("ViT attention"))
st.caption(glossary.hover(_(
    "A Vision Transformer cuts the image into patches and adds one extra token, **CLS**, "
    "whose final state is classified. Each map shows how much CLS attends to each patch: "
    "bright is where it looks."), "patch", "attention"), unsafe_allow_html=True)
style.projector_css()

picked = model_picker("vit_attention_model", models=("vit",), default="vit-fashion-mnist")
if picked is None:
    st.stop()
ck, choice = picked
ds = dataset(choice.dataset)
classes = list(class_names(ck.meta.get("classes") or ds.classes))

# --- which image, the prediction and rollout

left, right = st.columns([1, 2], gap="large")
with left:
    shared = selection.get_image(ds.name)
    sources = (N_("The image from Predict / Explain"), N_("A test image"))
    use_shared = shared is not None and st.radio(
        _("Image"), sources, format_func=_, key="vit_attention_source", bind="query-params") == sources[0]
    if use_shared:
        inp = shared
    else:
        index = st.number_input(_("Test image (0 to {last:,})").format(last=len(ds.test_y) - 1), 0, len(ds.test_y) - 1,
                                value=0, step=1, key="vit_attention_index", bind="query-params")
        inp = selection.test_image(ds, index)
    att = vit_attention(ck.model, inp.x)
    pred = int(att.probs.argmax())
    verdict = ("" if inp.label is None else f", {style.mark(True)}" if pred == inp.label
               else ", " + _("{mark}: it is a **{name}**").format(mark=style.mark(False), name=classes[inp.label]))
    st.markdown(f"{inp.source} → **{classes[pred]}**{verdict}")
    style.chart(views.prediction_figure(att.probs, classes, inp.label), width="stretch",
                config={"displayModeBar": False}, key="vit_attention_pred")
    smooth = st.toggle(_("Smooth patches"), value=True, key="vit_attention_smooth", bind="query-params",
                       help=_("Bilinear upsampling of the patch maps; off shows each patch as a block."))
    st.caption(_("{rows} × {cols} patches of {p} × {p} pixels, {layers} layers × {heads} heads.").format(
        rows=att.grid[0], cols=att.grid[1], p=att.patch_size, layers=att.n_layer, heads=att.n_head))

image = grey(inp.x)
with right:
    st.subheader(_("Attention rollout: all layers together"))
    style.chart(views.rollout_figure(image, att, smooth=smooth), width="stretch",
                config={"displayModeBar": False}, key="vit_attention_rollout")
    st.markdown(glossary.hover(_(
        "One layer's map only says what CLS reads from the tokens **of that layer**, which are "
        "already mixtures of patches. **Rollout** follows the flow back to the pixels: it averages "
        "the heads, adds the skip connection, (A + I) / 2, and multiplies the layers, first to "
        "last. Here {share:.0%} of the flow stays on CLS itself; the rest is the map.").format(share=att.rollout_self),
        "rollout", "patch"), unsafe_allow_html=True)

# --- per layer and head

st.subheader(_("CLS attention per layer (rows) and head (columns)"))
shared_scale = st.toggle(_("One colour scale for all maps (else each map to its own maximum)"),
                         value=False, key="vit_attention_shared_scale", bind="query-params")
style.chart(views.head_grid_figure(image, att, smooth=smooth, shared_scale=shared_scale),
            width="stretch", config={"displayModeBar": False}, key="vit_attention_grid")
st.caption(_("“CLS keeps” is the share of the head's attention on the CLS token itself, which no "
             "patch map shows. Heads that keep most of it contribute little to that layer. Raw "
             "attention is not an explanation by itself (Jain and Wallace 2019; Chefer et al. "
             "2021): compare it with the gradient-based maps on the Explain page."))

st.subheader(_("Knock each head out"))
vit_knockout_section(str(ck.path), choice.mtime, ds.name, inp.x, pred, classes[pred])
