"""Predict and look inside: upload, draw, snap or pick an image; see how it becomes the model's input,
what the model predicts, and what its filters and feature maps do with it."""
import streamlit as st

from karp_models.i18n import _
from karp_models.introspect import features as feat
from karp_models.ui import predict as ui
from karp_models.ui import predict_inside as inside
from karp_models.ui import style
from karp_models.ui.compute import look
from karp_models.ui.figures import predict as figs
from karp_models.ui.images import display

st.title(_("Predict and look inside"))
style.projector_css()
st.markdown(_("##### Give a network an image of your own, see how it is turned into the network's "
              "input, what the network predicts, and what each layer sees."))

# --- the model

target = ui.choose_target()

# --- the input

st.header(_("1. An image"))
source = st.radio(_("Image from"), ui.SOURCES, index=ui.SOURCES.index("Test image"),  # useful at once
                  format_func=_, key="predict_source", horizontal=True, bind="query-params")
got = ui.raw_from_source(source, target)
taken = ui.take_input(got, target) if got is not None else None
if taken is None:
    st.stop()
inp, x, pipe = taken.inp, taken.x, taken.pipe
if pipe is not None:
    with st.expander(_("How the image becomes the model's input ({recipe} recipe: {n} steps)").format(
            recipe=pipe.style, n=len(pipe.steps)), expanded=True):
        ui.show_pipeline(taken.decoded, pipe)

# --- the prediction

st.header(_("2. The prediction"))
if pipe is not None and pipe.blank:
    ui.no_prediction(pipe)
    st.stop()
if target.model is None:
    st.info(_("Choose a model above whose weights are here to see a prediction."))
    st.stop()
probs, maps = look(target.model, target.key, x)
c_img, c_bars = st.columns([1, 2])
with c_img:
    st.image(display(x, side=style.px(260)), caption=_("the model's input, {w}×{h}").format(
        w=x.shape[2], h=x.shape[1]))
    if inp.label is not None and inp.label < len(target.classes):
        st.markdown(_("### True class: {name}, {mark}").format(
            name=target.classes[inp.label], mark=style.mark(int(probs.argmax()) == inp.label)))
with c_bars:
    k = min(5, len(target.classes))
    top = feat.top_k(probs, target.classes, k)
    st.markdown(f"### {top[0][0]}: {top[0][1]:.1%}")
    style.chart(figs.topk_figure(top), key="predict_topk")
    if target.dataset != "imagenet":
        if st.button(_("Explain this prediction (which pixels mattered)"), icon=":material/lightbulb:",
                     key="predict_explain"):
            st.session_state["explain_source"] = "shared"          # Explain opens on this image
            st.switch_page("pages/explain.py", query_params={"explain_model": target.title})
    if target.origin in ("shipped", "run") and pipe is not None:   # a photo for a 28x28 model
        st.info(ui.what_it_knows(target), icon=":material/info:")

# --- look inside

st.header(_("3. Look inside"))
t_maps, t_filters, t_max, t_evo, t_lapse = st.tabs([_("Feature maps"), _("First-layer filters"),
                                                     _("What a channel wants to see"),
                                                     _("Filters during training"), _("Time-lapse")])
with t_maps:
    inside.feature_maps_tab(target, maps, x)
with t_filters:
    inside.filters_tab(target)
with t_max:
    inside.maximise_tab(target, maps)
with t_evo:
    inside.evolution_tab(target)
with t_lapse:
    inside.timelapse_tab(target, x)
