"""Explain: which pixels made the model decide, and can that explanation be trusted?"""
import streamlit as st

from karp_models.data import DatasetMissing
from karp_models.i18n import _
from karp_models.introspect.attribution import available, title
from karp_models.ui import explain as ex
from karp_models.ui import glossary, style
from karp_models.ui.cache import image_key
from karp_models.ui.compute import probabilities
from karp_models.ui.images import display
from karp_models.ui.loaders import class_names, dataset

st.title(_("Explain a prediction"))
st.caption(glossary.hover(
    _("Captum's attribution methods side by side on one colour scale, then three honest checks: "
      "do the maps depend on the model (sanity check), do they point at what the model uses "
      "(faithfulness), and what a tiny adversarial change does to prediction and map."),
    "attribution", "sanity check"), unsafe_allow_html=True)

left, right = st.columns([1, 2])
with left:
    picked = ex.pick_model()
if picked is None:
    st.stop()
ck, choice = picked
try:
    ds = dataset(choice.dataset)
except DatasetMissing as e:                     # says in words where the data comes from
    st.error(str(e))
    st.stop()
classes = class_names(ds.classes)
with right:
    inp = ex.pick_input(ds, choice)
if inp is None:
    st.stop()

x_np = inp.x.numpy()
probs = probabilities(choice.path, choice.mtime, x_np)
c_img, c_info = st.columns([1, 3])
c_img.image(display(x_np, side=style.px(224)), caption=inp.source, width="stretch")
with c_info:
    pred = int(probs.argmax())
    if inp.label is not None:
        st.markdown(_("**{source}**: true class **{truth}**, predicted **{pred}** ({p:.1%})").format(
            source=inp.source, truth=classes[inp.label], pred=classes[pred], p=probs[pred])
            + f"  {style.mark(inp.label == pred)}")
    else:
        st.markdown(_("**{source}**: predicted **{pred}** ({p:.1%})").format(
            source=inp.source, pred=classes[pred], p=probs[pred]))
    target = ex.pick_target(probs, classes, key=f"explain_target_{image_key(x_np)}_{choice.path}")
    methods_all = available(ck.model)
    methods = tuple(st.multiselect(_("Methods"), methods_all, methods_all, format_func=title,
                                   key=f"explain_methods_{choice.model_name}", bind="query-params"))
if not methods:
    st.info(_("Choose at least one method."))
    st.stop()

glossary.words("attribution", "logit", "saliency", "Integrated Gradients", "Grad-CAM", "sanity check",
               "Spearman rho", "infidelity", "max-sensitivity", "deletion", "insertion", "rollout",
               "adversarial example")
t_attr, t_sanity, t_faith, t_adv, t_robust = st.tabs(
    [_("Attributions"), _("Sanity check"), _("Faithfulness"), _("Adversarial"), _("Normal vs robust")],
    key="explain_tab", bind="query-params")
with t_attr:
    ex.attributions_tab(choice, inp, x_np, target, classes, methods, probs)
with t_sanity:
    ex.sanity_tab(choice, x_np, target, classes, methods)
with t_faith:
    ex.faithfulness_tab(choice, x_np, target, classes, methods)
for tab in (t_sanity, t_faith):                 # after both: one summary per method from the two checks
    with tab:
        ex.together(choice, x_np, target, classes, methods)
with t_adv:
    ex.adversarial_tab(choice, inp, x_np, classes, probs, methods_all)
with t_robust:
    if t_robust.open:                           # only when shown: it explains the image with a second model
        ex.robust_tab(choice, inp, x_np, classes)
