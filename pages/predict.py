"""Predict and look inside: upload, draw, snap or pick an image; see how it becomes the model's input,
what the model predicts, and what its filters and feature maps do with it."""
import streamlit as st

from karp_models.i18n import N_, _
from karp_models.introspect import features as feat
from karp_models.ui import cache, style
from karp_models.ui import predict as ui
from karp_models.ui.compute import look
from karp_models.ui.figures import predict as figs
from karp_models.ui.images import display
from karp_models.ui.models import model_picker
from karp_models.ui.selection import ImageInput, set_blank, set_image

st.title(_("Predict and look inside"))
style.projector_css()
st.markdown(_("##### Give a network an image of your own, see how it is turned into the network's "
              "input, what the network predicts, and what each layer sees."))

# --- the model

KINDS = (N_("karp's models (clothes and digits, 28×28; your runs)"), N_("ImageNet models (photos of everyday things)"))
kind = st.radio(_("Models"), KINDS, format_func=_, key="predict_kind", horizontal=True, bind="query-params")
target = None
if kind == KINDS[0]:
    picked = model_picker("predict_model", task="image")
    if picked is not None:
        target = ui.karp_target(*picked)
else:
    target = ui.imagenet_picker()
if target is None:  # no model: the input and its pipeline still work (Fashion-MNIST's recipe)
    from karp_models.ui.predict import Target

    karp = kind == KINDS[0]
    target = Target(model=None, key="", classes=(), dataset="fashion-mnist" if karp else "imagenet",
                    channels=1 if karp else 3, size=28 if karp else 224, resize=None if karp else 256,
                    origin="none", title="", meta={})

# --- the input

st.header(_("1. An image"))
source = st.radio(_("Image from"), ui.SOURCES, index=ui.SOURCES.index("Test image"),  # useful at once
                  format_func=_, key="predict_source", horizontal=True, bind="query-params")
got = ui.raw_from_source(source, target)
if got is None:
    st.stop()

decoded, pipe, original = None, None, None
if isinstance(got, ImageInput):
    inp = got
    x = got.x[0].numpy()
else:
    result = ui.handle_raw(got, target)
    if result is None:
        st.stop()
    decoded, pipe = result
    x = pipe.x
    original = pipe.steps[0].image
    inp = ImageInput.from_array(x, dataset=target.dataset, source=got.source, original=original)
if pipe is None or not pipe.blank:                 # a blank image is not passed on to Explain
    set_image(inp)
else:
    set_blank(inp.source)

if pipe is not None:
    with st.expander(_("How the image becomes the model's input ({recipe} recipe: {n} steps)").format(
            recipe=pipe.style, n=len(pipe.steps)), expanded=True):
        ui.show_pipeline(decoded, pipe)

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
t_maps, t_filters, t_max, t_evo = st.tabs([_("Feature maps"), _("First-layer filters"),
                                            _("What a channel wants to see"), _("Filters during training")])
layers = list(maps)

with t_maps:
    if not layers:
        st.info(_("This model has no convolutional feature maps (a vision transformer cuts the image "
                  "into patches): see the **ViT attention** page for what it looks at."))
    else:
        c1, c2 = st.columns([2, 1])
        layer = c1.selectbox(_("Layer"), layers, index=0, key="predict_layer", bind="query-params",
                             format_func=lambda n: _("{layer}: {c} channels of {h}×{w}").format(
                                 layer=n, c=maps[n].shape[0], h=maps[n].shape[1], w=maps[n].shape[2]))
        m = maps[layer]
        ch = c2.number_input(_("Zoom into channel"), 0, m.shape[0] - 1, 0, key=f"predict_channel_{layer}")
        g1, g2 = st.columns([3, 2])
        with g1:
            st.markdown(_("**All {c} channels of {layer}** (bright = strong activation; each channel on its "
                          "own scale; hover for its number)").format(c=m.shape[0], layer=layer))
            style.chart(cache.figure(("maps", target.key, cache.image_key(x), layer),
                                     lambda: figs.maps_figure(m)), key="predict_maps")
        with g2:
            style.chart(figs.channel_figure(m[int(ch)], _("channel {n}").format(n=int(ch))), key="predict_zoom")
            st.caption(_("max {max:.3f}, mean {mean:.3f}. Early layers respond to edges and strokes; later "
                         "ones to larger parts, at lower resolution.").format(max=m[int(ch)].max(),
                                                                              mean=m[int(ch)].mean()))

with t_filters:
    w = feat.filter_weights(target.model)
    if w is None:
        st.info(_("This model has no convolution layer."))
    else:
        name = feat.first_conv(target.model)[0]
        st.markdown(_("**{n} filters of {layer}**, each {h}×{w} over {c} input channel(s).").format(
            n=w.shape[0], layer=name, h=w.shape[2], w=w.shape[3], c=w.shape[1]) + " " + (
                _("**Red** weights respond to bright pixels, **blue** to dark ones; each filter is shown on its "
                  "own scale.") if w.shape[1] != 3 else _("Shown as colour images (grey = zero weight).")))
        style.chart(cache.figure(("filters", target.key), lambda: figs.filters_figure(w)),
                    key="predict_filters")

with t_max:
    ui.maximise_tab(target, maps)

with t_evo:
    ui.evolution_tab(target)
