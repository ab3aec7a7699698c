"""The Evaluate page's widgets: the summary metrics, the confusion matrix with clickable cells,
calibration, the misclassified gallery, the embedding projector and the two-model comparison.
The numbers come from introspect.evaluate and .embeddings (cached in ui.compute), the figures
from ui.figures.evaluate; nothing here does tensor maths.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from karp_models.i18n import N_, _
from karp_models.introspect import embeddings as emb
from karp_models.introspect import evaluate as ev
from karp_models.models.finetune import FineTuneConfig
from karp_models.ui import glossary, style
from karp_models.ui import timelapse as lapse_view
from karp_models.imagenet import WeightsUnavailable
from karp_models.ui.compute import embedding_features, knn_accuracy, pca_coords, robustness, tsne_coords
from karp_models.ui.figures import evaluate as figs
from karp_models.ui.images import display
from karp_models.ui.loaders import class_names
from karp_models.ui.models import ModelChoice, load_model, model_choices, test_probabilities
from karp_models.ui.selection import set_image, test_image

VIEWS = [N_("Confusion matrix"), N_("Calibration"), N_("Mistakes"), N_("Projector"),
         N_("Compare two models"), N_("Under attack")]                      # shown with _()
ROBUST_EPS = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3]
ROBUST_ITEMS = [250, 500, 1000]
PER_PAGE = 12
CARD_PX = 160                  # a gallery card: the image and its two buttons; two fit beside the
                               # confusion matrix on a 1280-pixel projector, in presentation mode too

# ---------------------------------------------------------------------------- small helpers


def open_in(ds, index: int, page: str) -> None:
    """Make test image `index` the shared image and open it in `page` (Explain or Predict) with
    the model evaluated here, whatever that page showed last."""
    set_image(test_image(ds, index))
    model = st.session_state.get("evaluate_model")
    if page.endswith("explain.py"):
        st.session_state["explain_source"] = "shared"
        params = {"explain_model": model.label} if model else None
    else:
        st.session_state.update(predict_source="Test image", predict_test_index=int(index))
        params = {"predict_model": model.label} if model else None
    st.switch_page(page, query_params=params)


def card(ds, probs: np.ndarray, labels: np.ndarray, index: int, key: str, *, other: np.ndarray | None = None,
         names: tuple[str, str] = ("", "")) -> None:
    """One test image: the picture, its true class, the model's top 3 (and a second model's top 1),
    and buttons that open it in Explain and in Predict / look inside."""
    cls = class_names(ds.classes)
    st.image(display(ds.test_x[index], side=CARD_PX), width="stretch")
    y = int(labels[index])
    st.markdown(_("**#{index}** · true: **{name}**").format(index=index, name=cls[y]))
    top = ev.top_k(probs[index], 3)
    lines = [f"{style.mark(c == y) if r == 0 else '·'} {cls[c]} {p:.0%}" for r, (c, p) in enumerate(top)]
    if other is not None:
        c2 = int(other[index].argmax())
        lines = [f"{names[0]}: " + lines[0]] + lines[1:] + \
                [f"{names[1]}: {style.mark(c2 == y)} {cls[c2]} {other[index, c2]:.0%}"]
    st.markdown("  \n".join(lines))
    if st.button(_("Explain"), icon=":material/lightbulb:", key=f"{key}_explain_{index}",
                 help=_("Open this image in Explain"), width="stretch"):
        open_in(ds, index, "pages/explain.py")
    if st.button(_("Look inside"), icon=":material/image_search:", key=f"{key}_inside_{index}",
                 width="stretch", help=_("Open this image in Predict and look inside")):
        open_in(ds, index, "pages/predict.py")


def cards(ds, probs: np.ndarray, labels: np.ndarray, indices: np.ndarray, key: str, *,
          per_page: int = PER_PAGE, **kw) -> None:
    """A paged gallery of `card`s for `indices` in their given order, as many to a row as fit."""
    if len(indices) == 0:
        st.info(_("No images here."))
        return
    pages = (len(indices) - 1) // per_page + 1
    page = 1
    if pages > 1:
        page = int(st.number_input(_("Page (of {pages}; {n:,} images)").format(pages=pages, n=len(indices)), 1,
                                   pages, 1, key=f"{key}_page"))
    chunk = indices[(page - 1) * per_page: page * per_page]
    with st.container(horizontal=True, gap="medium"):
        for i in chunk:
            with st.container(width=CARD_PX):
                card(ds, probs, labels, int(i), key, **kw)


# ---------------------------------------------------------------------------- summary


def summary(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> None:
    """Accuracy with its 95% Wilson interval, mistakes and ECE as metrics."""
    pred = probs.argmax(1)
    acc = ev.accuracy(pred, labels)
    rel = ev.reliability(probs, labels, n_bins)
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Test accuracy"), f"{acc.value:.2%}",
              delta=_("interval {low:.1f}–{high:.1f}% (95%)").format(low=100 * acc.low, high=100 * acc.high),
              delta_color="off", delta_arrow="off",
              help=_("Top-1 accuracy on the whole test split: the share of test images whose most "
                     "probable class is the true one.") + "\n\n" + glossary.tip("confidence interval"))
    c2.metric(_("Mistakes of {n:,}").format(n=acc.n), f"{acc.n - acc.correct:,}",
              help=_("Test images whose most probable class is not the true one."))
    c3.metric(_("Calibration error"), f"{rel.ece:.2%}",
              help=glossary.tip("ECE", "calibration") + "\n\n" + _("Measured over {n} confidence bins.").format(
                  n=n_bins))


# ---------------------------------------------------------------------------- confusion matrix


def _cell_clicked() -> None:
    """on_select of the confusion matrix: copy the clicked cell into the two selectboxes."""
    ev_state = st.session_state.get("evaluate_cm_chart") or {}
    points = (ev_state.get("selection") or {}).get("points") or []
    cd = points[0].get("customdata") if points else None
    if cd is not None:
        t, p = list(cd.values() if isinstance(cd, dict) else cd)[:2]
        st.session_state["evaluate_cell_true"] = int(t)
        st.session_state["evaluate_cell_pred"] = int(p)


def confusion_section(ds, probs: np.ndarray, labels: np.ndarray) -> None:
    classes = class_names(ds.classes)
    K = len(classes)
    pred = probs.argmax(1)
    cm = ev.confusion(labels, pred, K)
    worst = int(np.argmax(np.where(np.eye(K, dtype=bool), -1, cm)))   # the largest confusion
    for key, default in (("evaluate_cell_true", worst // K), ("evaluate_cell_pred", worst % K)):
        if st.session_state.get(key) not in range(K):                   # first visit, or fewer classes
            st.session_state[key] = default
    left, right = st.columns([3, 2], gap="medium")
    with left:
        normalised = st.toggle(_("Row-normalised (share of each true class)"), key="evaluate_cm_norm",
                               help=_("Off: image counts. On: each row sums to 100%, so the diagonal is "
                                      "each class's recall."))
        selected = (st.session_state["evaluate_cell_true"], st.session_state["evaluate_cell_pred"])
        style.chart(figs.confusion_figure(cm, classes, normalised, selected), key="evaluate_cm_chart",
                    on_select=_cell_clicked, selection_mode="points", width="stretch",
                    config={"displayModeBar": False})
        st.caption(_("Rows: the true class. Columns: what the model said. Click a cell to see its images."))
    with right:
        st.markdown(_("#### Images in a cell"))
        c1, c2 = st.columns(2)
        t = c1.selectbox(_("True class"), range(K), format_func=lambda k: classes[k], key="evaluate_cell_true")
        p = c2.selectbox(_("Predicted as"), range(K), format_func=lambda k: classes[k], key="evaluate_cell_pred")
        idx = ev.cell_indices(probs, labels, t, p)
        cell = (_("**{n:,}** {truth} predicted as **{pred}** (correct), the most confident first") if t == p else
                _("**{n:,}** {truth} predicted as **{pred}** (mistakes), the most confident first"))
        st.markdown(cell.format(n=len(idx), truth=classes[t], pred=classes[p]))
        cards(ds, probs, labels, idx, f"evaluate_cell_{t}_{p}", per_page=8)
    st.markdown(_("#### Per class"))
    st.dataframe(figs.per_class_frame(cm, classes), hide_index=True, width="stretch",
                 column_config={c: st.column_config.ProgressColumn(c, format="percent", min_value=0, max_value=1)
                                for c in (_("precision"), _("recall"), _("F1"))})
    st.caption(_("Precision: of the images the model called this class, the share that are. Recall: of the "
                 "images of this class, the share the model found. F1: their harmonic mean."))


# ---------------------------------------------------------------------------- calibration


def calibration_section(probs: np.ndarray, labels: np.ndarray) -> None:
    n_bins = st.slider(_("Confidence bins"), 5, 30, 15, key="evaluate_bins", bind="query-params")
    rel = ev.reliability(probs, labels, n_bins)
    left, right = st.columns([2, 1], gap="large")
    with left:
        style.chart(figs.reliability_figure(rel), width="stretch", config={"displayModeBar": False})
    with right:
        st.metric(_("Expected calibration error"), f"{rel.ece:.2%}", help=glossary.tip("ECE"))
        conf, acc = probs.max(1).mean(), (probs.argmax(1) == labels).mean()
        st.metric(_("Mean confidence"), f"{conf:.2%}", _("{gap:+.2%} vs accuracy").format(gap=conf - acc),
                  delta_color="off")
        st.markdown(glossary.hover(_(
            "A model is **calibrated** when, of the images it labels with a confidence of 80%, 80% "
            "are right: each blue bar (accuracy) then reaches its red tick (the mean "
            "confidence) on the dashed diagonal. A tick above its bar is over-confidence, "
            "below it under-confidence. ECE is the gap averaged over the bins, weighted by how "
            "many images fall in each (Guo et al. 2017). Label smoothing, used by the fast CNN, "
            "tends to make a model *under*-confident."), "ECE"), unsafe_allow_html=True)


# ---------------------------------------------------------------------------- mistakes


def mistakes_section(ds, probs: np.ndarray, labels: np.ndarray) -> None:
    classes = class_names(ds.classes)
    wrong = ev.misclassified(probs, labels)
    c1, c2 = st.columns(2)
    only = c1.selectbox(_("True class"), [None, *range(len(classes))], key="evaluate_gallery_true",
                        format_func=lambda k: _("any") if k is None else classes[k])
    said = c2.selectbox(_("Predicted as"), [None, *range(len(classes))], key="evaluate_gallery_pred",
                        format_func=lambda k: _("any") if k is None else classes[k])
    pred = probs.argmax(1)
    keep = np.ones(len(wrong), bool)
    if only is not None:
        keep &= labels[wrong] == only
    if said is not None:
        keep &= pred[wrong] == said
    st.markdown(_("**{n:,}** misclassified test images, the most confident mistakes first. Each shows the "
                  "model's top 3; the buttons open it in **Explain** or in **Predict and look inside**.").format(
                      n=keep.sum()))
    cards(ds, probs, labels, wrong[keep], f"evaluate_gallery_{only}_{said}")


# ---------------------------------------------------------------------------- projector


def projector_section(ds, choice: ModelChoice, probs: np.ndarray, labels: np.ndarray) -> None:
    classes = class_names(ds.classes)
    N = len(labels)
    sizes = [s for s in (2000, 5000, 10000) if s < N] + [N]
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    n = c1.selectbox(_("Test images"), sizes, key="evaluate_proj_n", format_func=lambda s: f"{s:,}")
    method = c2.segmented_control(_("Projection"), ["PCA", "t-SNE"], default="PCA", key="evaluate_proj_method")
    colour_by = c3.segmented_control(_("Colour by"), [N_("true class"), N_("predicted class")], default="true class",
                                     format_func=_, key="evaluate_proj_colour")
    seed = int(c4.number_input(_("Seed"), 0, 999, 0, key="evaluate_proj_seed"))
    before = before_or_after(choice, n)
    if before is None:
        return
    feats = embedding_features(choice.path, choice.mtime, n, before)
    layer = emb.penultimate_layer(load_model(choice.path, choice.mtime).model)
    if method == "t-SNE":
        coords = tsne_coords(choice.path, choice.mtime, n, seed, before=before, compute=False)
        if coords is None:
            ask = st.empty()
            with ask.container():
                st.info(_("t-SNE of {n:,} points takes a while on a CPU (about 20–60 s for 10,000 on two "
                          "cores); the result is kept for everyone using this app.").format(n=n))
                go_now = st.button(_("Compute t-SNE of {n:,} points").format(n=n), key="evaluate_tsne_go",
                                   type="primary")
            if not go_now:
                return
            ask.empty()
            bar = st.progress(0.0, text=_("t-SNE: starting"))
            coords = tsne_coords(choice.path, choice.mtime, n, seed, before=before,
                                 progress=lambda f, words: bar.progress(f, text=words))
            bar.empty()
        about = _("t-SNE (openTSNE, perplexity 30, seed {seed}) of the {d}-dimensional features: neighbours "
                  "stay neighbours, but distances between clusters and cluster sizes mean little.").format(
                      seed=seed, d=feats.shape[1])
    else:
        coords, ratio = pca_coords(choice.path, choice.mtime, n, before)
        about = _("PCA of the {d}-dimensional features: the two directions of largest variance, {a:.0%} and "
                  "{b:.0%} of it. Distances are honest, but much is hidden.").format(d=feats.shape[1], a=ratio[0],
                                                                                      b=ratio[1])
    pred = probs.argmax(1)
    st.caption(_("Each dot is a test image placed by what the last layer sees (`{layer}`, the input of the "
                 "final Linear layer). {about} ✕ marks a mistake.").format(layer=layer, about=about))
    left, right = st.columns([3, 1], gap="medium")
    with left:
        event = style.chart(figs.projector_figure(coords, labels, pred, probs, classes, colour_by),
                            key=f"evaluate_proj_chart_{method}_{n}_{before}", on_select="rerun",
                            selection_mode=("points", "lasso", "box"), width="stretch")
    with right:
        chosen_panel(ds, probs, labels, pred, event)
    if before:
        return
    st.subheader(_("The projector during training"))
    sources = lapse_view.image_sources(choice.path, choice.mtime, choice.origin,
                                       load_model(choice.path, choice.mtime).model, choice.label, ds.name)
    try:
        any_lapse = bool(sources())
    except Exception:  # noqa: BLE001 - a damaged time-lapse: the section below says so
        any_lapse = True
    if any_lapse and not st.toggle(_("Replay the run: the same test images at each of its snapshots"),
                                   key="evaluate_tl_on"):
        st.caption(_("Each snapshot's features are computed once; on a laptop that takes a few seconds."))
        return
    lapse_view.projector_section(sources, ds.test_x, labels, classes, colour_by)


def chosen_panel(ds, probs: np.ndarray, labels: np.ndarray, pred: np.ndarray, event) -> None:
    """The images of the dots clicked or lassoed in the projector."""
    points = (event.selection.points if event and event.selection else []) or []
    chosen = [int(p["customdata"]) for p in points if p.get("customdata") is not None]
    if not chosen:
        st.markdown(_("#### Click a dot\n…or draw a lasso around a group, to see the images here. "
                      "Hovering names the image and the prediction."))
        return
    if len(chosen) == 1:
        st.markdown(_("#### The chosen image"))
        card(ds, probs, labels, chosen[0], "evaluate_proj")
    else:
        st.markdown(_("#### {n:,} chosen images").format(n=len(chosen)))
        wrong = int((labels[chosen] != pred[chosen]).sum())
        st.caption(_("{n} of them misclassified; the first 24 below").format(n=wrong))
        st.image([display(ds.test_x[i], scale=2) for i in chosen[:24]], width=56)


WHEN = [N_("after fine-tuning"), N_("before: the pretrained backbone")]


def before_or_after(choice: ModelChoice, n: int) -> bool | None:
    """For a fine-tuned model: a choice between its features and those of the pretrained network
    it started from, with how well each separates the classes (leave-one-out 5-NN accuracy).
    False for any other model; None (after a message) when the backbone's weights are gone."""
    cfg = getattr(load_model(choice.path, choice.mtime).model, "config", None)
    if not isinstance(cfg, FineTuneConfig):
        return False
    when = st.segmented_control(_("Features"), WHEN, default=WHEN[0], format_func=_, key="evaluate_proj_when")
    try:
        acc = {b: knn_accuracy(choice.path, choice.mtime, n, b) for b in (False, True)}
    except WeightsUnavailable as e:
        st.warning(_("The pretrained backbone this model started from cannot be loaded ({error}), so only "
                     "the fine-tuned features are shown.").format(error=e), icon=":material/warning:")
        return False if when != WHEN[1] else None
    k = acc[False][1]
    words = (_("How well the classes separate in the features (each test image given the class of its nearest "
               "neighbour): **{before:.0%} before** fine-tuning, **{after:.0%} after**.") if k == 1 else
             _("How well the classes separate in the features (each test image given the class of most of its {k} "
               "nearest neighbours): **{before:.0%} before** fine-tuning, **{after:.0%} after**."))
    st.markdown(words.format(before=acc[True][0], after=acc[False][0], k=k))
    if cfg.mode == "head":
        st.caption(_("Only the head was trained: the backbone is frozen, so its features are the same before "
                     "and after."))
    elif cfg.mode == "scratch":
        st.caption(_("This model was trained from scratch: it did not start from the pretrained backbone, "
                     "which is shown for comparison."))
    return when == WHEN[1]


# ---------------------------------------------------------------------------- two models


def compare_section(ds, choice: ModelChoice, probs: np.ndarray, labels: np.ndarray) -> None:
    others = [c for c in model_choices("image") if c.dataset == choice.dataset and c.path != choice.path]
    if not others:
        st.info(_("There is no second model trained on {dataset}: train one on the **Train** page.").format(
            dataset=choice.dataset))
        return
    stems = [Path(c.path).stem for c in others]
    default = next((stems.index(s) for s in ("vit-fashion-mnist", "classic-fashion-mnist") if s in stems), 0)
    b = st.selectbox(_("Compare with"), others, index=default, format_func=lambda c: c.label,
                     key="evaluate_compare_model")
    probs_b, labels_b = test_probabilities(b.path, b.mtime)
    if len(labels_b) != len(labels) or not np.array_equal(labels_b, labels):
        st.error(_("The two models were evaluated on different test images; they cannot be compared."))
        return
    name_a, name_b = Path(choice.path).stem, Path(b.path).stem
    d = ev.disagreement(probs, probs_b, labels)
    acc_a, acc_b = ev.accuracy(probs.argmax(1), labels), ev.accuracy(probs_b.argmax(1), labels)
    c1, c2, c3, c4 = st.columns(4)
    interval = _("interval {low:.2%} – {high:.2%} (95%)")
    c1.metric(f"A: {name_a}", f"{acc_a.value:.2%}", help=interval.format(low=acc_a.low, high=acc_a.high))
    c2.metric(f"B: {name_b}", f"{acc_b.value:.2%}", help=interval.format(low=acc_b.low, high=acc_b.high))
    c3.metric(_("Images they disagree on"), f"{len(d.indices):,} ({d.rate:.0%})",
              help=_("Test images where the two models' top-1 answers differ."))
    p = ev.mcnemar_p(len(d.a_right), len(d.b_right))
    c4.metric(_("McNemar p-value"), f"{p:.2g}", help=glossary.tip("McNemar", "p-value"))
    t = d.table
    st.dataframe(pd.DataFrame({_("B ({name}) right").format(name=name_b): [t[1, 1], t[0, 1]],
                               _("B ({name}) wrong").format(name=name_b): [t[1, 0], t[0, 0]]},
                              index=[_("A ({name}) right").format(name=name_a),
                                     _("A ({name}) wrong").format(name=name_a)]), width="content")
    st.markdown(_("Where they disagree, **A is right {a:,} times, B {b:,} times**, and {both:,} times neither "
                  "is.").format(a=len(d.a_right), b=len(d.b_right), both=len(d.both_wrong)))
    K = len(ds.classes)
    per = pd.DataFrame({_("A right, B wrong"): np.bincount(labels[d.a_right], minlength=K),
                        _("B right, A wrong"): np.bincount(labels[d.b_right], minlength=K),
                        _("both wrong, differently"): np.bincount(labels[d.both_wrong], minlength=K)},
                       index=list(class_names(ds.classes)))
    style.chart(figs.disagreement_figure(per), width="stretch", config={"displayModeBar": False})
    groups = [N_("A right, B wrong"), N_("B right, A wrong"), N_("both wrong")]
    group = st.segmented_control(_("Examples"), groups, default=groups[0], format_func=_,
                                 key="evaluate_compare_group")
    idx = {groups[0]: d.a_right, groups[1]: d.b_right}.get(group, d.both_wrong)
    st.caption(_("Most decided disagreements first (both models confident). First line: A's top 3; "
                 "last line: B's answer."))
    cards(ds, probs, labels, idx, f"evaluate_compare_{group}", other=probs_b, names=("A", "B"))


# ---------------------------------------------------------------------------- under attack


def robustness_section(choice: ModelChoice) -> None:
    """Clean and robust accuracy under PGD at a chosen epsilon and steps, on the first test
    images, on request; a robust model's own recorded figure beside it."""
    meta = load_model(choice.path, choice.mtime).meta
    rec = meta.get("robust") or {}
    st.markdown(_("**How much accuracy survives an attack?** Each test image is attacked with PGD: small "
                  "steps that raise the model's loss on the true class, never changing a pixel by more than "
                  "ε (on the 0–1 scale). The robust accuracy is the share still classified correctly."))
    c = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    eps0 = float(rec.get("epsilon", 0.1))
    eps = c[0].select_slider(_("ε (largest change per pixel)"), sorted(set(ROBUST_EPS) | {eps0}), value=eps0,
                             key="evaluate_robust_eps", bind="query-params")
    steps = c[1].selectbox(_("PGD steps"), [10, 20, 40], index=[10, 20, 40].index(int(rec.get("steps", 10)))
                           if int(rec.get("steps", 10)) in (10, 20, 40) else 0, key="evaluate_robust_steps")
    items0 = int(rec.get("items", 500))
    items = c[2].selectbox(_("Test images"), sorted(set(ROBUST_ITEMS) | {items0}),
                           index=sorted(set(ROBUST_ITEMS) | {items0}).index(items0), key="evaluate_robust_items")
    run_key = f"{choice.path}|{choice.mtime}|{eps}|{steps}|{items}"
    if c[3].button(_("Attack"), icon=":material/bolt:", type="primary", key="evaluate_robust_run", width="stretch"):
        st.session_state["evaluate_robust_for"] = run_key
    if st.session_state.get("evaluate_robust_for") != run_key:
        st.caption(_("Runs on request: {steps} gradient steps for each of {n:,} images take a while on a laptop.").format(
            steps=steps, n=items))
        return
    r = robustness(choice.path, choice.mtime, float(eps), int(steps), int(items))
    m = st.columns(3)
    m[0].metric(_("Clean accuracy"), f"{r.clean:.1%}", help=_("On the same {n:,} test images, not attacked.").format(
        n=r.n))
    m[1].metric(_("Robust accuracy"), f"{r.robust:.1%}", delta=_("{d:+.1f} points").format(d=100 * (r.robust - r.clean)),
                help=_("PGD, L-inf ε = {eps:g}, {steps} steps of {size:.4g}, from the clean image.").format(
                    eps=r.epsilon, steps=r.steps, size=r.step_size))
    same = rec and abs(float(rec.get("epsilon", -1)) - r.epsilon) < 1e-9 and int(rec.get("steps", 0)) == r.steps \
        and int(rec.get("items", 0)) == r.n
    robust_rec = meta.get("metrics", {}).get("test_robust_accuracy")
    if same and robust_rec is not None:
        m[2].metric(_("Recorded in the file"), f"{robust_rec:.1%}",
                    help=_("Measured by the training command with the same attack; `python -m karp_models eval` "
                           "checks it."))
    st.caption(_("PGD with L-inf ε = {eps:g} (pixels on the 0–1 scale), {steps} steps of {size:.4g}, on the first "
                 "{n:,} test images. A model trained without adversarial examples usually falls near 0% at "
                 "ε = 0.1; an adversarially trained one keeps much of its accuracy.").format(
                     eps=r.epsilon, steps=r.steps, size=r.step_size, n=r.n))
