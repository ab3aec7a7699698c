"""The Explain page's widgets and tabs. The maths is in introspect/, the cached computations in
ui.compute (keyed on model file, its mtime, the image's bytes, the target class, the methods),
the figures in ui.figures.explain, shared by sessions through ui.cache. Sanity check and
faithfulness run only on a button, the adversarial attack on a toggle.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from karp_models.i18n import N_, _, language
from karp_models.introspect import adversarial as adv
from karp_models.introspect import faithfulness as faith
from karp_models.introspect import sanity, trust
from karp_models.introspect.attribution import METHODS, title
from karp_models.introspect.similarity import KINDS, MEASURES, judge_all
from karp_models.ui import cache, selection, style
from karp_models.ui import compute as cp
from karp_models.ui.figures import explain as figs
from karp_models.ui.models import ModelChoice, model_choices, model_picker

SOURCES = {"shared": N_("The image from Predict / Evaluate"), "test": N_("A test image"),
           "mistake": N_("One of the model's confident mistakes")}                  # shown with _()
DEFAULT_ADV_METHODS = ("Saliency", "Integrated Gradients", "Grad-CAM")
ROBUST_METHODS = ("Saliency", "Integrated Gradients")
OBJECT_ITEMS = 200             # test images the share of saliency on the object is measured over
OBJECT_MAX_AREA = 0.85         # brighter than this share of the image: not an object on black

# ---------------------------------------------------------------------------- input, model, target


def pick_model():
    """(checkpoint, choice) of an image model (default: the fast CNN), or None."""
    return model_picker("explain_model", task="image")


def pick_input(ds, choice) -> selection.ImageInput | None:
    """The image to explain: the shared one, a test image, or the n-th most confident mistake."""
    shared = selection.get_image(ds.name)
    blank = selection.blank_source()
    if blank is not None:
        st.info(_("The latest image given to Predict ({source}) was blank after preprocessing, so there is "
                  "nothing of it to explain. Explain a test image here, or give Predict another image.").format(
                      source=blank))
    options = (["shared"] if shared is not None else []) + ["test", "mistake"]
    source = st.radio(_("Image to explain"), options, format_func=lambda k: _(SOURCES[k]), horizontal=True,
                      key="explain_source", bind="query-params")
    if source == "shared" and shared is not None:
        return shared
    if source == "test":
        i = st.number_input(_("Test image number (0 to {last:,})").format(last=len(ds.test_y) - 1), 0,
                            len(ds.test_y) - 1,
                            0, key="explain_test_index", bind="query-params")
        return selection.test_image(ds, int(i))
    wrong, probs, labels = cp.mistakes(choice.path, choice.mtime)
    if len(wrong) == 0:
        st.success(_("This model makes no mistakes on the test set."))
        return None
    n = st.number_input(_("Mistake number (1 = the most confident of {n:,})").format(n=len(wrong)), 1, len(wrong),
                        1, key="explain_mistake", bind="query-params")
    i = int(wrong[int(n) - 1])
    p = probs[i]
    st.caption(_("Mistake {k} of {n:,} is test image #{index}: **{truth}** taken for **{pred}** ({p:.0%}).").format(
        k=int(n), n=len(wrong), index=i, truth=_(ds.classes[int(labels[i])]), pred=_(ds.classes[int(p.argmax())]),
        p=p.max()))
    return selection.test_image(ds, i)


def pick_target(probs: np.ndarray, classes, key: str) -> int:
    """Class to explain; the prediction by default."""
    order = [int(k) for k in np.argsort(-probs)]
    pred = order[0]
    def label(k: int) -> str:
        return (_("{name} ({p:.1%}) ← prediction") if k == pred else _("{name} ({p:.1%})")).format(
            name=classes[k], p=probs[k])
    return int(st.selectbox(_("Class to explain"), order, index=0, format_func=label, key=key))

# ---------------------------------------------------------------------------- tabs


def attributions_tab(choice, inp: selection.ImageInput, x_np: np.ndarray, target: int, classes,
                     methods: tuple[str, ...], probs: np.ndarray) -> None:
    maps = cp.attributions(choice.path, choice.mtime, x_np, target, methods)
    plain = {k: a.map for k, a in maps.items()}
    fig = cache.figure(("attributions", choice.path, choice.mtime, cache.image_key(x_np), target, methods),
                       lambda: figs.overlay_figure(x_np[0], plain, title_of=title, first=_("input"), cols=3,
                                                   height_per_row=300))
    style.chart(fig, width="stretch", key="explain_overlay")   # 3 a row: ~250 px maps at 1280x720
    st.markdown(_("**Red** pixels push the score of **{name}** up, **blue** pixels push it down; "
                  "transparent means no effect. Each map is divided by its own 99th percentile of |value|, "
                  "so maps in different units share one scale. Saliency, SmoothGrad, Grad-CAM and attention "
                  "rollout are never negative by construction.").format(name=classes[target]))
    for k, why in judge_all(plain).items():
        st.warning(_("**{method}** for {name}: the map {why}. The checks on the other tabs say 'cannot judge' "
                     "for it rather than rank nothing.").format(method=title(k), name=classes[target], why=why))
    df = figs.summary_frame(maps)                                       # English columns: the CSV's
    shown = figs.summary_table(df)
    st.table(shown.style.format({_("sum of attributions"): "{:.3f}",      # wraps: no cut-off column
                                 _("min"): "{:.3g}", _("max"): "{:.3g}", _("ms"): "{:.0f}"}, na_rep="–"))
    gap = cp.score_gap(choice.path, choice.mtime, x_np, target)
    st.caption(_("Convergence delta (Integrated Gradients, DeepLift, GradientSHAP): the gap between the sum "
                 "of the attributions and the change of the class score from the black baseline (here the "
                 "{name} logit changes by {gap:.3f}); near 0 means the attributions account for the whole "
                 "change.").format(name=classes[target], gap=gap))
    heading = f"{inp.source}: {classes[target]} ({probs[target]:.0%}), {Path(choice.path).stem}"
    c1, c2, c3 = st.columns(3)
    c1.download_button(_("↓ Panel as PNG"), lambda: figs.png_panel(x_np[0], plain, heading), "explain_panel.png",
                       "image/png", key="explain_png")
    c2.download_button(_("↓ Maps as CSV"), lambda: figs.maps_csv(maps), "explain_maps.csv", "text/csv",
                       key="explain_csv")
    c3.download_button(_("↓ Summary as CSV"), df.to_csv().encode(), "explain_summary.csv", "text/csv",
                       key="explain_summary_csv")


def _run_key(name: str, choice, x_np: np.ndarray, target: int, methods) -> str:
    return f"{name}|{choice.path}|{choice.mtime}|{cache.image_key(x_np)}|{target}|{','.join(methods)}"


def _requested(name: str, key: str, label: str, caption: str) -> bool:
    """A button that runs a costly check for this model, image, target and methods; the result
    stays shown over reruns until one of those changes (remembered in the session)."""
    if st.button(label, key=f"explain_{name}_run", type="primary"):
        st.session_state[f"explain_{name}_for"] = key
    if st.session_state.get(f"explain_{name}_for") != key:
        st.caption(caption)
        return False
    return True


# a verdict's box: its colour and a Material icon (emoji are boxes where no emoji font is installed)
BOX = {sanity.PASSES: (st.success, ":material/check_circle:"), sanity.PARTLY_DEPENDS: (st.warning, ":material/rule:"),
       sanity.FAILS: (st.error, ":material/warning:"), sanity.CANNOT: (st.info, ":material/help:")}
TITLE = {sanity.PASSES: N_("passes"), sanity.PARTLY_DEPENDS: N_("partly"), sanity.FAILS: N_("fails"),
         sanity.CANNOT: N_("cannot judge")}                                   # shown with _()


def sanity_tab(choice, x_np: np.ndarray, target: int, classes, methods: tuple[str, ...]) -> None:
    st.markdown(_("**Is the heatmap about the model, or just about the image?** Adebayo et al. (2018): "
                  "replace the trained weights by random ones, one layer at a time from the output side "
                  "to the input side, and recompute every map. A method that explains the model must "
                  "give a different map for a destroyed model. Each map is compared with the original in "
                  "three ways, on **|map|** (how much each pixel counts) and, for methods with a sign, on "
                  "the **signed map** (for or against the class): *Spearman* (same order of pixels?), "
                  "*SSIM* (same regions?), *HOG* (same edges?); 1 = alike, 0 = unrelated. A method "
                  "**fails** when every similarity stays at {high} or more, **passes** when every one falls "
                  "below {low}, and depends on the model **partly** in between.").format(
                      high=sanity.STILL_SIMILAR, low=sanity.PARTLY))
    key = _run_key("sanity", choice, x_np, target, methods)
    if not _requested("sanity", key, _("▶ Run the sanity check"),
                      _("Runs on a copy of the model; a few seconds for the fast CNN.")):
        return
    bar = st.progress(0.0, text=_("Starting…"))

    def progress(done: int, total: int, msg: str) -> None:
        bar.progress(done / total, text=_("Step {step} of {total}: {what}").format(step=done, total=total, what=msg))

    res = cp.sanity_check(choice.path, choice.mtime, x_np, target, methods, 0, progress=progress)
    bar.progress(1.0, text=_("Done in {s:.1f} s (seed {seed}); the model itself is unchanged.").format(
        s=res.seconds, seed=res.seed))
    cols = st.columns(2)
    for i, v in enumerate(res.verdicts.values()):                    # two a row: fits a projector
        with cols[i % 2]:
            box, icon = BOX[v.status]
            box(v.text, icon=icon)
    fig = cache.figure(("sanity lines", choice.path, choice.mtime, cache.image_key(x_np), target, methods),
                       lambda: figs.sanity_figure(
                           res.names, {k: res.measures(k) for k in res.similarity}, res.target_prob, classes[target],
                           status={k: _(TITLE[v.status]) for k, v in res.verdicts.items()},
                           drivers={k: v.drivers for k, v in res.verdicts.items()},
                           band=(sanity.PARTLY, sanity.STILL_SIMILAR)))
    style.chart(fig, width="stretch", key="explain_sanity_lines")
    st.caption(_("Left to right: the layers randomised so far, from the output side to the input side. "
                 "Colour: the similarity; solid: |map|, dashed: the signed map; thick: the one that "
                 "decides the verdict. Shaded: between passes and fails. Dotted: the randomised model's "
                 "probability for the class; once it falls the model knows nothing any more, so its maps "
                 "should look unlike the original. A gap: that map cannot be judged."))
    final = pd.DataFrame({k: v.final for k, v in res.verdicts.items()}, dtype=float).T.reindex(res.verdicts)
    final = final[[f"{m} {k}" for k in KINDS for m in MEASURES if f"{m} {k}" in final]]
    drivers = {title(k): tuple(figs.measure_label(d) for d in v.drivers) for k, v in res.verdicts.items()}
    final = final.rename(columns=figs.measure_label, index=title)
    final.insert(0, _("verdict"), [_(TITLE[v.status]) for v in res.verdicts.values()])
    final.index.name = _("with every layer random")
    numbers = list(final.columns[1:])                    # as text: st.dataframe shows a missing value as "None"
    final[numbers] = final[numbers].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
    st.table(final.style                                  # wraps its headers: fits a projector
             .apply(lambda col: ["background-color: #fde68a" if col.name in drivers[m] else ""
                                 for m in col.index], axis=0))
    st.caption(_("Highlighted: the similarity that decides each verdict (for 'partly': what stays and what "
                 "changes). –: the method has no sign, or its map cannot be judged."))
    show = st.select_slider(_("Maps after randomising up to"), res.names, value=res.names[-1],
                            key="explain_sanity_step")
    j = res.names.index(show)
    key = ("sanity", choice.path, choice.mtime, cache.image_key(x_np), target, methods, j)
    fig = cache.figure(key, lambda: figs.sanity_maps_figure(
        x_np[0], {k: m[0] for k, m in res.maps.items()}, {k: m[j] for k, m in res.maps.items()},
        {k: rho[j] for k, rho in res.correlation.items()},
        {k: res.series(k, "Spearman signed")[j] for k in res.maps if METHODS[k].signed}))
    style.chart(fig, width="stretch", key="explain_sanity_maps")
    st.download_button(_("↓ Sanity check as CSV"), pd.DataFrame(res.records()).to_csv(index=False).encode(),
                       "explain_sanity.csv", "text/csv", key="explain_sanity_csv")


def _best_cells(df: pd.DataFrame, rankings: dict[str, faith.Ranking]) -> pd.DataFrame:
    """Styler.apply: green where a column has one best method."""
    css = pd.DataFrame("", index=df.index, columns=df.columns)
    for head, r in rankings.items():
        if r.best is not None:
            css.loc[r.best, head] = "background-color: #c7e9c0"
    return css


def faithfulness_tab(choice, x_np: np.ndarray, target: int, classes, methods: tuple[str, ...]) -> None:
    st.markdown(_("**Does the map point at what the model uses?** Four numbers per method: "
                  "*infidelity* (does attribution · noise predict the score change under that noise), "
                  "*max-sensitivity* (does the map jump when the image moves by 0.02), and the areas "
                  "under the *deletion* curve (black out the most important pixels first: a faithful map "
                  "makes P({name}) fall fast) and the *insertion* curve (add them to a "
                  "black image first: it should rise fast). Deletion and insertion take the signed map's "
                  "order: the most red pixels first.").format(name=classes[target]))
    key = _run_key("faith", choice, x_np, target, methods)
    if not _requested("faith", key, _("▶ Measure faithfulness"), _("A few seconds for the fast CNN.")):
        return
    bar = st.progress(0.0, text=_("Starting…"))
    rows = cp.faithfulness(choice.path, choice.mtime, x_np, target, methods,
                           progress=lambda d, n, m: bar.progress(d / n, text=_("{method} ({done} of {total})").format(
                               method=title(m), done=d, total=n)))
    bar.empty()
    df = pd.DataFrame(faith.table(rows)).set_index("method")                  # the CSV's English columns
    notes = df.pop("cannot judge because")
    short = {head: _(faith.SHORT[f]) + (" ↑" if higher else " ↓") for f, (head, higher) in faith.COLUMNS.items()}
    rankings = {short[head]: faith.rank(rows, f) for f, (head, _higher) in faith.COLUMNS.items()}
    shown = df.rename(columns=short, index=title).rename_axis(_("method"))
    best = {head: faith.Ranking(r.column, r.places, title(r.best) if r.best else None, r.reason)
            for head, r in rankings.items()}
    st.dataframe(shown.style.format("{:.3f}", na_rep=_("cannot judge"))
                 .apply(_best_cells, axis=None, rankings=best), width="stretch")
    verdicts = [_("{score}: {best}").format(score=head[:-2], best=title(r.best)) if r.best else
                _("{score}: no best ({why})").format(score=head[:-2], why=r.reason) for head, r in rankings.items()]
    st.caption(_("↓ lower is better, ↑ higher is better. Green: the best in a column, when one method is ahead of "
                 "the others. {verdicts}.").format(verdicts="; ".join(verdicts)))
    if (why := faith.baseline_note(x_np)) is not None:
        st.info(_("No method can come out best at deletion or insertion: {why}.").format(why=why))
    for m, why in notes[notes != ""].items():
        st.info(_("**{method}**: cannot judge, {why}.").format(method=title(m), why=why))
    c1, c2 = st.columns(2)
    for col, kind in ((c1, "deletion"), (c2, "insertion")):
        curves = {title(r.method): (getattr(r, kind).fraction, getattr(r, kind).prob, getattr(r, kind).auc)
                  for r in rows if getattr(r, kind) is not None}
        fig = figs.faithfulness_curve_figure(kind, curves, classes[target])
        with col:
            style.chart(fig, width="stretch", key=f"explain_{kind}")
    st.download_button(_("↓ Faithfulness as CSV"), df.assign(**{"cannot judge because": notes}).to_csv().encode(),
                       "explain_faithfulness.csv", "text/csv", key="explain_faith_csv")


def together(choice, x_np: np.ndarray, target: int, classes, methods: tuple[str, ...]) -> None:
    """One summary per method from both checks, once both have run for this image and class
    (the page draws it under both tabs, after both have run)."""
    res = cp.sanity_check(choice.path, choice.mtime, x_np, target, methods, 0, compute=False)
    rows = cp.faithfulness(choice.path, choice.mtime, x_np, target, methods, compute=False)
    st.markdown(_("##### :material/explore: The two checks together"))
    if res is None or rows is None:
        st.caption(_("Run the sanity check and the faithfulness measures (each on its tab) to read one "
                     "summary per method here: they ask different questions, and this says how their "
                     "answers fit."))
        return
    for k, s in trust.summarise(res.verdicts, rows, classes[target]).items():
        st.markdown(_("- **{method}** (sanity check: {sanity} · faithfulness: {faithfulness}): {text}").format(
            method=title(k), sanity=_(TITLE[s.sanity]), faithfulness=_(s.faithfulness), text=s.text))


def adversarial_tab(choice, inp: selection.ImageInput, x_np: np.ndarray, classes, probs: np.ndarray,
                    available: list[str]) -> None:
    st.markdown(_("**Can an invisible change flip the prediction?** Both attacks push the image away "
                  "from the model's prediction. FGSM takes one step of size ε along the sign of the loss "
                  "gradient; PGD takes ten smaller steps and stays within ε of every pixel (ε on the "
                  "0–1 pixel scale)."))
    c1, c2, c3 = st.columns([1, 2, 3])
    method = c1.radio(_("Attack"), adv.ATTACKS, key="explain_adv_attack")
    eps = c2.slider(_("ε (largest change per pixel)"), 0.0, 0.3, 0.05, 0.005, format="%.3f", key="explain_adv_eps")
    methods = tuple(c3.multiselect(_("Attributions to compare"), available,
                                   [m for m in DEFAULT_ADV_METHODS if m in available], format_func=title,
                                   key="explain_adv_methods"))
    label = int(probs.argmax())                                       # push away from the prediction
    if not st.toggle(_("Attack this image"), key="explain_adv_on",
                     help=_("Runs on request: an attack recomputes the model's gradients and every "
                            "chosen map, which a shared classroom server should not do unasked.")):
        st.caption(_("Switch on to run the attack; the slider then updates it live."))
        return
    res = cp.adversarial(choice.path, choice.mtime, x_np, label, methods, method, float(eps), language())
    m1, m2, m3 = st.columns(3)
    m1.metric(_("Before: {p:.0%}").format(p=res.probs_before[res.pred_before]), classes[res.pred_before])
    m2.metric(_("After {attack}: {p:.0%}").format(attack=method, p=res.probs_after[res.pred_after]),
              classes[res.pred_after])
    m3.metric(_("P({name}) after the attack").format(name=classes[label]), f"{res.probs_after[label]:.1%}",
              f"{res.probs_after[label] - res.probs_before[label]:+.1%}")
    if res.fooled:
        fooled = (_("Fooled: a change of at most {eps:.3f} per pixel turns **{before}** into **{after}** (the true "
                    "class, as it happens).") if inp.label == res.pred_after else
                  _("Fooled: a change of at most {eps:.3f} per pixel turns **{before}** into **{after}**."))
        st.error(fooled.format(eps=eps, before=classes[res.pred_before], after=classes[res.pred_after]))
    else:
        st.success(_("Not fooled at ε = {eps:.3f}: still **{name}**. Try a larger ε or PGD.").format(
            eps=eps, name=classes[res.pred_after]))
    key = ("adversarial", choice.path, choice.mtime, cache.image_key(x_np), label, methods, method,
           float(eps), tuple(classes))
    images = lambda: figs.adversarial_images_figure(x_np[0], res.perturbation, res.x_adv, eps)  # noqa: E731
    style.chart(cache.figure(key + ("images",), images),
                    width="stretch", key="explain_adv_images")
    if not methods:
        return
    maps = lambda: figs.adversarial_maps_figure(  # noqa: E731
        x_np[0], {m: res.before[m].map for m in methods}, {m: res.after[m].map for m in methods},
        {m: s.get("Spearman") for m, s in res.similarity.items()}, classes[res.pred_before],
        classes[res.pred_after])
    style.chart(cache.figure(key + ("maps",), maps),
                    width="stretch", key="explain_adv_maps")
    st.caption(_("Each method's map of the prediction before and after the attack; ρ is the rank "
                 "correlation of |map| between the two. The 'after' maps are drawn over the original image."))
    for m, s in res.similarity.items():
        if s.reason:
            st.info(_("**{method}**: cannot compare, {why}.").format(method=title(m), why=s.reason))


# ---------------------------------------------------------------------------- normal vs robust


def is_robust(c: ModelChoice) -> bool:
    """Trained adversarially: its file records a robust accuracy."""
    return dict(c.metrics).get("test_robust_accuracy") is not None


def robust_tab(choice, inp: selection.ImageInput, x_np: np.ndarray, classes) -> None:
    """The same image explained by this model and by a robust (or a normal) one of its data,
    side by side, and the share of saliency on the object over many test images."""
    st.markdown(_("**Does an adversarially trained model look at the object?** A robust model's gradients "
                  "tend to follow the object's shape, while a normal model's are scattered like noise "
                  "(Tsipras et al., 2019). The same image, explained by both."))
    others = [c for c in model_choices("image") if c.dataset == choice.dataset and c.path != choice.path
              and is_robust(c) != is_robust(choice)]
    if not others:
        want = _("a normal one") if is_robust(choice) else _("an adversarially trained one")
        st.info(_("There is no other model of {dataset} to compare with ({want}): train one on the **Train** page "
                  "(Augmentation and adversarial training).").format(dataset=choice.dataset, want=want))
        return
    stems = [Path(c.path).stem for c in others]
    default = next((stems.index(s) for s in ("fast-robust-fashion-mnist", "fast-fashion-mnist") if s in stems), 0)
    c1, c2 = st.columns([2, 3])
    other = c1.selectbox(_("Compare with"), others, index=default, format_func=lambda c: c.label,
                         key="explain_robust_other")
    methods = tuple(c2.multiselect(_("Methods"), ROBUST_METHODS, list(ROBUST_METHODS), format_func=title,
                                   key="explain_robust_methods"))
    normal, robust = (other, choice) if is_robust(choice) else (choice, other)
    label = inp.label if inp.label is not None else int(cp.probabilities(choice.path, choice.mtime, x_np).argmax())
    st.caption(_("Both maps explain the class **{name}** ({why}).").format(
        name=classes[label], why=_("the true class") if inp.label is not None else _("this model's prediction")))
    shares = {}
    for col, c, kind in zip(st.columns(2), (normal, robust), (_("Normal"), _("Robust"))):
        probs = cp.probabilities(c.path, c.mtime, x_np)
        pred = int(probs.argmax())
        maps = cp.attributions(c.path, c.mtime, x_np, label, methods) if methods else {}
        plain = {k: a.map for k, a in maps.items()}
        mark = f"  {style.mark(pred == label)}" if inp.label is not None else ""
        col.markdown(_("**{kind}**: {model}").format(kind=kind, model=Path(c.path).stem) + "  \n"
                     + _("predicts {pred} ({p:.0%})").format(pred=classes[pred], p=probs[pred]) + mark)
        # two lines in both columns: the figures below stay aligned
        if plain:                                     # side by side: both models on one projector screen
            fig = cache.figure(("robust-vs", c.path, c.mtime, cache.image_key(x_np), label, methods),
                               lambda: figs.overlay_figure(x_np[0], plain, title_of=title, first=None,
                                                           cols=2, height_per_row=250))
            with col:
                style.chart(fig, width="stretch", key=f"explain_robust_{c.path}")
        if "Saliency" in plain:
            shares[kind] = float(adv.object_share(plain["Saliency"], x_np[0])[0][0])
    area = float(adv.object_share(np.ones(x_np.shape[-2:]), x_np[0])[1][0])
    if area > OBJECT_MAX_AREA:                   # a photo, not an object on black: no mask to measure on
        st.caption(_("The share of saliency on the object is measured only for images of an object on a "
                     "black background, such as Fashion-MNIST's; here {area:.0%} of the pixels are bright.").format(
                         area=area))
        return
    if len(shares) == 2:
        st.markdown(_("On this image the object covers **{area:.0%}** of the pixels; it holds **{n:.0%}** of the "
                      "normal model's saliency and **{r:.0%}** of the robust model's.").format(
                          area=area, n=shares[_("Normal")], r=shares[_("Robust")]))
    sn, an = cp.saliency_on_object(normal.path, normal.mtime, OBJECT_ITEMS)
    sr, _ar = cp.saliency_on_object(robust.path, robust.mtime, OBJECT_ITEMS)
    m = st.columns(3)
    m[0].metric(_("Saliency on the object: normal"), f"{np.nanmean(sn):.0%}")
    m[1].metric(_("Saliency on the object: robust"), f"{np.nanmean(sr):.0%}",
                delta=_("{d:+.0f} points").format(d=100 * (np.nanmean(sr) - np.nanmean(sn))))
    m[2].metric(_("Object's share of the image"), f"{np.mean(an):.0%}",
                help=_("What a map spread evenly over the image would score."))
    st.caption(_("Mean over the first {n} test images, each explained for its true class: the share of |saliency| "
                 "on pixels brighter than {t:g} (the object; the background is black). Integrated Gradients is "
                 "not measured this way: from a black baseline it is zero on black pixels by construction.").format(
                     n=OBJECT_ITEMS, t=adv.OBJECT_THRESHOLD))
