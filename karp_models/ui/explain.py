"""The Explain page's widgets, cached computations and figures (Streamlit lives here, the math in introspect/).

Every expensive result is cached on (model file, its mtime, the image's bytes, the target class,
the methods): st.cache_data for most, a small shared LRU for the two runs that show progress.
Sanity check and faithfulness run only on a button.
"""
from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from karp_models.introspect import adversarial as adv
from karp_models.introspect import attribution as attr
from karp_models.introspect import faithfulness as faith
from karp_models.introspect import sanity
from karp_models.introspect.evaluate import misclassified
from karp_models.ui import selection
from karp_models.ui.models import load_model, model_picker, test_probabilities

FONT = dict(size=16)
# Diverging, transparent at 0 so the image shows through: blue = against the class, red = for it.
SCALE = [[0.0, "rgba(5,48,97,1)"], [0.2, "rgba(33,102,172,0.85)"], [0.4, "rgba(146,197,222,0.35)"],
         [0.5, "rgba(255,255,255,0)"], [0.6, "rgba(244,165,130,0.35)"], [0.8, "rgba(214,96,77,0.85)"],
         [1.0, "rgba(103,0,31,1)"]]
SOURCES = {"shared": "The image from Predict / Evaluate", "test": "A test image",
           "mistake": "One of the model's confident mistakes"}
DEFAULT_ADV_METHODS = ("Saliency", "Integrated Gradients", "Grad-CAM")
SHORT = {"Integrated Gradients": "IG", "GradientSHAP": "SHAP", "Guided Grad-CAM": "Guided GC",
         "Attention rollout": "Rollout"}    # panel titles in the 4-column grids

# ---------------------------------------------------------------------------- cached computations


def _model(path: str, mtime: float) -> torch.nn.Module:
    return load_model(path, mtime).model


def _x(x_np: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))


@st.cache_data(max_entries=64, show_spinner=False)
def probabilities(path: str, mtime: float, x_np: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(_model(path, mtime)(_x(x_np))[0].float(), -1)[0].numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def score_gap(path: str, mtime: float, x_np: np.ndarray, target: int) -> float:
    """f(x) - f(black) for the target's logit: what IG's and DeepLift's attributions should sum to."""
    x = _x(x_np)
    with torch.no_grad():
        logits = _model(path, mtime)(torch.cat([x, torch.zeros_like(x)]))[0]
    return float(logits[0, target] - logits[1, target])


@st.cache_data(max_entries=64, show_spinner="Computing the attributions…")
def attributions(path: str, mtime: float, x_np: np.ndarray, target: int,
                 methods: tuple[str, ...]) -> dict[str, attr.Attribution]:
    return attr.attribute_all(_model(path, mtime), _x(x_np), target, methods)


@st.cache_resource
def _progress_results() -> tuple[OrderedDict, threading.Lock]:
    """Results of the runs that show a progress bar. st.cache_data replays a cached function's
    elements and refuses calls on a bar made outside it, so these two keep a small LRU of their
    own, shared by sessions and keyed the same way (model file, mtime, image bytes, target, methods)."""
    return OrderedDict(), threading.Lock()


def _memo(key: tuple, compute, max_entries: int = 16):
    store, lock = _progress_results()
    with lock:
        if key in store:
            store.move_to_end(key)
            return store[key]
    value = compute()
    with lock:
        store[key] = value
        while len(store) > max_entries:
            store.popitem(last=False)
    return value


def sanity_check(path: str, mtime: float, x_np: np.ndarray, target: int, methods: tuple[str, ...],
                 seed: int = 0, progress=None) -> sanity.SanityResult:
    key = ("sanity", path, mtime, image_key(x_np), x_np.shape, target, methods, seed)
    return _memo(key, lambda: sanity.cascading_randomisation(_model(path, mtime), _x(x_np), target, methods,
                                                             seed=seed, progress=progress))


def faithfulness(path: str, mtime: float, x_np: np.ndarray, target: int, methods: tuple[str, ...],
                 progress=None) -> list[faith.FaithRow]:
    def compute():
        a = attributions(path, mtime, x_np, target, methods)
        return faith.faithfulness(_model(path, mtime), _x(x_np), target, a, progress=progress)
    return _memo(("faith", path, mtime, image_key(x_np), x_np.shape, target, methods), compute)


@st.cache_data(max_entries=32, show_spinner="Attacking the image…")
def adversarial(path: str, mtime: float, x_np: np.ndarray, label: int, methods: tuple[str, ...],
                method: str, epsilon: float) -> adv.AdversarialResult:
    return adv.adversarial(_model(path, mtime), _x(x_np), label, methods, method=method, epsilon=epsilon)


@st.cache_data(max_entries=4, show_spinner="Finding the model's mistakes on the test set…")
def mistakes(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs, labels = test_probabilities(path, mtime)
    return misclassified(probs, labels), probs, labels


def image_key(x_np: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x_np).tobytes()).hexdigest()[:16]


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_figure(key: tuple, _build) -> go.Figure:
    """A figure built once per key (model file, mtime, image bytes, target, methods, ...) and
    shared by every session: plotly's figure building costs more CPU than a cached explanation's
    whole rerun otherwise. Never mutated: st.plotly_chart works on a copy (Figure.to_dict)."""
    return _build()

# ---------------------------------------------------------------------------- input, model, target


def pick_model():
    """(checkpoint, choice) of an image model (default: the fast CNN), or None."""
    return model_picker("explain_model", task="image")


def pick_input(ds, choice) -> selection.ImageInput | None:
    """The image to explain: the shared one, a test image, or the n-th most confident mistake."""
    shared = selection.get_image(ds.name)
    options = (["shared"] if shared is not None else []) + ["test", "mistake"]
    source = st.radio("Image to explain", options, format_func=SOURCES.get, horizontal=True,
                      key="explain_source")
    if source == "shared" and shared is not None:
        return shared
    if source == "test":
        i = st.number_input(f"Test image number (0 to {len(ds.test_y) - 1:,})", 0, len(ds.test_y) - 1,
                            0, key="explain_test_index")
        return selection.test_image(ds, int(i))
    wrong, probs, labels = mistakes(choice.path, choice.mtime)
    if len(wrong) == 0:
        st.success("This model makes no mistakes on the test set.")
        return None
    n = st.number_input(f"Mistake number (1 = the most confident of {len(wrong):,})", 1, len(wrong), 1,
                        key="explain_mistake")
    i = int(wrong[int(n) - 1])
    p = probs[i]
    st.caption(f"Mistake {int(n)} of {len(wrong):,} is test image #{i}: "
               f"**{ds.classes[int(labels[i])]}** taken for **{ds.classes[int(p.argmax())]}** ({p.max():.0%}).")
    return selection.test_image(ds, i)


def pick_target(probs: np.ndarray, classes, key: str) -> int:
    """Class to explain; the prediction by default."""
    order = [int(k) for k in np.argsort(-probs)]
    pred = order[0]
    label = lambda k: f"{classes[k]} ({probs[k]:.1%})" + (" ← prediction" if k == pred else "")  # noqa: E731
    return int(st.selectbox("Class to explain", order, index=0, format_func=label, key=key))

# ---------------------------------------------------------------------------- figures


def gray_image(x: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8 for go.Image."""
    img = np.clip(x.transpose(1, 2, 0), 0, 1)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return (img * 255).astype(np.uint8)


def overlay_figure(x: np.ndarray, maps: dict[str, np.ndarray], *, title_of=None, cols: int = 5,
                   first: str | None = "input", height_per_row: int = 210) -> go.Figure:
    """The image, then one panel per map: the normalised map over the image on one shared signed
    scale (red for the class, blue against it, transparent at 0), with one colour bar."""
    norm = attr.normalise(maps)
    names = ([first] if first else []) + list(maps)
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    titles = [n if title_of is None or n == first else title_of(n) for n in names]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.1 if rows > 1 else 0.02)
    img = gray_image(x)
    for i, n in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Image(z=img if n != first else img, opacity=1.0 if n == first else 0.55,
                               hoverinfo="skip"), r, c)
        if n != first:
            hover = "row %{y}, col %{x}<br>scaled %{z:.2f}<br>raw %{customdata:.3g}<extra></extra>"
            fig.add_trace(go.Heatmap(z=norm[n], coloraxis="coloraxis", customdata=maps[n], hovertemplate=hover), r, c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    for i in range(len(names)):
        fig.layout[f"yaxis{'' if i == 0 else i + 1}"].scaleanchor = f"x{'' if i == 0 else i + 1}"
    fig.update_layout(coloraxis=dict(colorscale=SCALE, cmin=-1, cmax=1,
                                     colorbar=dict(title=dict(text="for the class ↑<br>against ↓"),
                                                   tickvals=[-1, 0, 1], ticktext=["−max", "0", "+max"])),
                      font=FONT, height=height_per_row * rows + 40, margin=dict(l=10, r=10, t=50, b=10),
                      plot_bgcolor="white")
    fig.update_annotations(font=FONT)
    return fig


def png_panel(x: np.ndarray, maps: dict[str, np.ndarray], title: str) -> bytes:
    """The same panel as a PNG (matplotlib's object API: safe off the script thread)."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    norm = attr.normalise(maps)
    names = ["input"] + list(maps)
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    cmap = LinearSegmentedColormap.from_list("karp", [(p, _rgba(c)) for p, c in SCALE])
    fig = Figure(figsize=(3.2 * cols + 1, 3.4 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    img = gray_image(x)
    for ax in axes.flat:
        ax.axis("off")
    im = None
    for i, n in enumerate(names):
        ax = axes.flat[i]
        ax.imshow(img, alpha=1.0 if n == "input" else 0.55)
        if n != "input":
            im = ax.imshow(norm[n], cmap=cmap, vmin=-1, vmax=1)
        ax.set_title(n, fontsize=14)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label="against (−)  /  for the class (+)")
    fig.suptitle(title, fontsize=15)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _rgba(s: str) -> tuple[float, float, float, float]:
    r, g, b, a = (float(v) for v in s[5:-1].split(","))
    return r / 255, g / 255, b / 255, a


def maps_csv(maps: dict[str, attr.Attribution]) -> bytes:
    """Long format: method, row, col, attribution (summed over channels), scaled value."""
    norm = attr.normalise({k: a.map for k, a in maps.items()})
    frames = []
    for k, a in maps.items():
        H, W = a.map.shape
        rr, cc = np.mgrid[0:H, 0:W]
        frames.append(pd.DataFrame({"method": k, "row": rr.ravel(), "col": cc.ravel(),
                                    "attribution": a.map.ravel(), "scaled": norm[k].ravel()}))
    return pd.concat(frames).to_csv(index=False).encode()


def summary_frame(maps: dict[str, attr.Attribution]) -> pd.DataFrame:
    rows = []
    for k, a in maps.items():
        rows.append({"method": k, "what it computes": attr.METHODS[k].short,
                     "sum of attributions": float(a.map.sum()),
                     "convergence delta": "–" if a.delta is None else f"{a.delta:.2g}",
                     "min": float(a.map.min()), "max": float(a.map.max()),
                     "ms": a.seconds * 1000})
    return pd.DataFrame(rows).set_index("method")

# ---------------------------------------------------------------------------- tabs


def attributions_tab(choice, inp: selection.ImageInput, x_np: np.ndarray, target: int, classes,
                     methods: tuple[str, ...], probs: np.ndarray) -> None:
    maps = attributions(choice.path, choice.mtime, x_np, target, methods)
    fig = cached_figure(("attributions", choice.path, choice.mtime, image_key(x_np), x_np.shape, target, methods),
                        lambda: overlay_figure(x_np[0], {k: a.map for k, a in maps.items()}))
    st.plotly_chart(fig, use_container_width=True, key="explain_overlay")
    st.markdown(f"**Red** pixels push the score of **{classes[target]}** up, **blue** pixels push it "
                f"down; transparent means no effect. Each map is divided by its own 99th percentile "
                f"of |value|, so maps in different units share one scale. Saliency, SmoothGrad, "
                f"Grad-CAM and attention rollout are never negative by construction.")
    df = summary_frame(maps)
    st.dataframe(df.style.format({"sum of attributions": "{:.3f}",
                                  "min": "{:.3g}", "max": "{:.3g}", "ms": "{:.0f}"}, na_rep="–"),
                 use_container_width=True)
    gap = score_gap(choice.path, choice.mtime, x_np, target)
    st.caption(f"Convergence delta (Integrated Gradients, DeepLift, GradientSHAP): the gap between the "
               f"sum of the attributions and the change of the class score from the black baseline "
               f"(here the {classes[target]} logit changes by {gap:.3f}); near 0 means the attributions "
               f"account for the whole change.")
    title = f"{inp.source}: {classes[target]} ({probs[target]:.0%}), {Path(choice.path).stem}"
    c1, c2, c3 = st.columns(3)
    plain = {k: a.map for k, a in maps.items()}                      # made only when clicked
    c1.download_button("⬇️ Panel as PNG", lambda: png_panel(x_np[0], plain, title), "explain_panel.png",
                       "image/png", key="explain_png")
    c2.download_button("⬇️ Maps as CSV", lambda: maps_csv(maps), "explain_maps.csv", "text/csv", key="explain_csv")
    c3.download_button("⬇️ Summary as CSV", df.to_csv().encode(), "explain_summary.csv", "text/csv",
                       key="explain_summary_csv")


def _run_key(name: str, choice, x_np: np.ndarray, target: int, methods) -> str:
    return f"{name}|{choice.path}|{choice.mtime}|{image_key(x_np)}|{target}|{','.join(methods)}"


def _requested(name: str, key: str, label: str, caption: str) -> bool:
    """A button that runs a costly check for this model, image, target and methods; the result
    stays shown over reruns until one of those changes (remembered in the session)."""
    if st.button(label, key=f"explain_{name}_run", type="primary"):
        st.session_state[f"explain_{name}_for"] = key
    if st.session_state.get(f"explain_{name}_for") != key:
        st.caption(caption)
        return False
    return True


def sanity_tab(choice, x_np: np.ndarray, target: int, classes, methods: tuple[str, ...]) -> None:
    st.markdown("**Is the heatmap about the model, or just about the image?** Adebayo et al. (2018): "
                "replace the trained weights by random ones, one layer at a time from the top, and "
                "recompute every map. A method that explains the model must produce different maps "
                "for a destroyed model. The score is the rank correlation (Spearman, of |map|) with "
                "the original map: 1 = the same ranking of pixels, 0 = unrelated.")
    key = _run_key("sanity", choice, x_np, target, methods)
    if not _requested("sanity", key, "▶️ Run the sanity check",
                      "Runs on a copy of the model; a few seconds for the fast CNN."):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(done: int, total: int, msg: str) -> None:
        bar.progress(done / total, text=f"Step {done} of {total}: {msg}")

    res = sanity_check(choice.path, choice.mtime, x_np, target, methods, 0, progress=progress)
    bar.progress(1.0, text=f"Done in {res.seconds:.1f} s (seed {res.seed}); the model itself is unchanged.")
    for k, v in res.verdicts.items():
        (st.error if v.flagged else st.warning if abs(v.final) >= sanity.PARTLY else st.success)(v.text)
    fig = go.Figure()
    steps = list(range(len(res.steps)))
    for k in res.correlation:
        fig.add_trace(go.Scatter(x=steps, y=res.correlation[k], mode="lines+markers", name=k))
    fig.add_trace(go.Scatter(x=steps, y=res.target_prob, mode="lines", name=f"P({classes[target]})",
                             line=dict(dash="dot", color="black")))
    fig.update_layout(font=FONT, height=430, yaxis=dict(title="rank correlation with the original", range=[-1, 1.05]),
                      xaxis=dict(title="layers randomised, from the top", tickvals=steps,
                                 ticktext=[s.replace("+ ", "").replace("features.", "").replace("classifier.", "")
                                           for s in res.steps], tickangle=-35),
                      margin=dict(l=10, r=10, t=30, b=10))
    st.plotly_chart(fig, use_container_width=True, key="explain_sanity_lines")
    st.caption("Dotted: the randomised model's probability for the class; once it falls the model "
               "knows nothing any more, so its maps should look unlike the original.")
    show = st.select_slider("Maps after randomising up to", res.steps, value=res.steps[-1],
                            key="explain_sanity_step")
    j = res.steps.index(show)
    pairs = {}
    for k in res.maps:
        pairs[f"{k}|o"] = res.maps[k][0]
        pairs[f"{k}|r"] = res.maps[k][j]
    def title(n: str) -> str:
        k = n.split("|")[0]
        return f"{SHORT.get(k, k)}: " + ("original" if n.endswith("|o") else f"ρ = {res.correlation[k][j]:.2f}")

    fig = cached_figure(("sanity", choice.path, choice.mtime, image_key(x_np), x_np.shape, target, methods, j),
                        lambda: overlay_figure(x_np[0], pairs, title_of=title, cols=4, first=None,
                                               height_per_row=260))
    st.plotly_chart(fig, use_container_width=True, key="explain_sanity_maps")
    table = pd.DataFrame({k: v for k, v in res.correlation.items()}, index=res.steps)
    table.index.name = "after randomising"
    st.download_button("⬇️ Sanity check as CSV", table.assign(**{f"P({classes[target]})": res.target_prob})
                       .to_csv().encode(), "explain_sanity.csv", "text/csv", key="explain_sanity_csv")


def faithfulness_tab(choice, x_np: np.ndarray, target: int, classes, methods: tuple[str, ...]) -> None:
    st.markdown("**Does the map point at what the model uses?** Four numbers per method: "
                "*infidelity* (does attribution · noise predict the score change under that noise), "
                "*max-sensitivity* (does the map jump when the image moves by 0.02), and the areas "
                "under the *deletion* curve (black out the most important pixels first: a faithful map "
                f"makes P({classes[target]}) fall fast) and the *insertion* curve (add them to a "
                "black image first: it should rise fast).")
    key = _run_key("faith", choice, x_np, target, methods)
    if not _requested("faith", key, "▶️ Measure faithfulness", "A few seconds for the fast CNN."):
        return
    bar = st.progress(0.0, text="Starting…")
    rows = faithfulness(choice.path, choice.mtime, x_np, target, methods,
                        progress=lambda d, n, m: bar.progress(d / n, text=f"{m} ({d} of {n})"))
    bar.empty()
    df = pd.DataFrame(faith.table(rows)).set_index("method")
    best = {c: (df[c].idxmax() if "higher" in c else df[c].idxmin()) for c in df.columns}
    st.dataframe(df.style.format("{:.3f}").highlight_min(
        subset=[c for c in df.columns if "lower" in c], color="#c7e9c0").highlight_max(
        subset=[c for c in df.columns if "higher" in c], color="#c7e9c0"), use_container_width=True)
    st.caption("Green: the best in each column. " + "; ".join(f"{c.split(' (')[0]}: {m}" for c, m in best.items()))
    c1, c2 = st.columns(2)
    for col, kind in ((c1, "deletion"), (c2, "insertion")):
        fig = go.Figure()
        for r in rows:
            cv = getattr(r, kind)
            fig.add_trace(go.Scatter(x=cv.fraction, y=cv.prob, mode="lines", name=f"{r.method} ({cv.auc:.2f})"))
        fig.update_layout(title=f"{kind.capitalize()}: P({classes[target]})", font=FONT, height=400,
                          xaxis_title="share of pixels " + ("removed" if kind == "deletion" else "added"),
                          yaxis=dict(range=[0, 1.02]), margin=dict(l=10, r=10, t=50, b=10))
        col.plotly_chart(fig, use_container_width=True, key=f"explain_{kind}")
    st.download_button("⬇️ Faithfulness as CSV", df.to_csv().encode(), "explain_faithfulness.csv",
                       "text/csv", key="explain_faith_csv")


def adversarial_images_figure(x_np: np.ndarray, res: adv.AdversarialResult, eps: float) -> go.Figure:
    """Original, perturbation (scaled by 1/ε) and adversarial image side by side."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=["original", f"perturbation (×{1 / max(eps, 1e-6):.0f})",
                                                        "adversarial"], horizontal_spacing=0.03)
    fig.add_trace(go.Image(z=gray_image(x_np[0])), 1, 1)
    fig.add_trace(go.Heatmap(z=res.perturbation.sum(0) / max(eps, 1e-6) / res.perturbation.shape[0],
                             zmin=-1, zmax=1, colorscale="RdBu_r", showscale=False), 1, 2)
    fig.add_trace(go.Image(z=gray_image(res.x_adv)), 1, 3)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(font=FONT, height=330, margin=dict(l=10, r=10, t=50, b=10))
    fig.update_annotations(font=FONT)
    return fig


def adversarial_maps_figure(x_np: np.ndarray, res: adv.AdversarialResult, methods: tuple[str, ...],
                            classes) -> go.Figure:
    """Each method's map before and after the attack, over the original image."""
    maps = {}
    for m in methods:
        maps[f"{m}|before"] = res.before[m].map
        maps[f"{m}|after"] = res.after[m].map

    def title(n: str) -> str:
        k = n.split("|")[0]
        if n.endswith("before"):
            return f"{SHORT.get(k, k)}: {classes[res.pred_before]}"
        return f"after: {classes[res.pred_after]}, ρ = {res.similarity[k]:.2f}"

    return overlay_figure(x_np[0], maps, title_of=title, cols=4, first=None, height_per_row=280)


def adversarial_tab(choice, inp: selection.ImageInput, x_np: np.ndarray, classes, probs: np.ndarray,
                    available: list[str]) -> None:
    st.markdown("**Can an invisible change flip the prediction?** Both attacks push the image away "
                "from the model's prediction. FGSM takes one step of size ε along the sign of the loss "
                "gradient; PGD takes ten smaller steps and stays within ε of every pixel (ε on the "
                "0–1 pixel scale).")
    c1, c2, c3 = st.columns([1, 2, 3])
    method = c1.radio("Attack", adv.ATTACKS, key="explain_adv_attack")
    eps = c2.slider("ε (largest change per pixel)", 0.0, 0.3, 0.05, 0.005, format="%.3f", key="explain_adv_eps")
    methods = tuple(c3.multiselect("Attributions to compare", available,
                                   [m for m in DEFAULT_ADV_METHODS if m in available], key="explain_adv_methods"))
    label = int(probs.argmax())                                       # push away from the prediction
    if not st.toggle("Attack this image", key="explain_adv_on",
                     help="Runs on request: an attack recomputes the model's gradients and every "
                          "chosen map, which a shared classroom server should not do unasked."):
        st.caption("Switch on to run the attack; the slider then updates it live.")
        return
    res = adversarial(choice.path, choice.mtime, x_np, label, methods, method, float(eps))
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Before: {res.probs_before[res.pred_before]:.0%}", classes[res.pred_before])
    m2.metric(f"After {method}: {res.probs_after[res.pred_after]:.0%}", classes[res.pred_after])
    m3.metric(f"P({classes[label]}) after the attack", f"{res.probs_after[label]:.1%}",
              f"{res.probs_after[label] - res.probs_before[label]:+.1%}")
    if res.fooled:
        note = " (the true class, as it happens)" if inp.label == res.pred_after else ""
        st.error(f"Fooled: a change of at most {eps:.3f} per pixel turns **{classes[res.pred_before]}** "
                 f"into **{classes[res.pred_after]}**{note}.")
    else:
        st.success(f"Not fooled at ε = {eps:.3f}: still **{classes[res.pred_after]}**. Try a larger ε or PGD.")
    key = ("adversarial", choice.path, choice.mtime, image_key(x_np), x_np.shape, label, methods, method,
           float(eps), tuple(classes))
    st.plotly_chart(cached_figure(key + ("images",), lambda: adversarial_images_figure(x_np, res, eps)),
                    use_container_width=True, key="explain_adv_images")
    if not methods:
        return
    st.plotly_chart(cached_figure(key + ("maps",), lambda: adversarial_maps_figure(x_np, res, methods, classes)),
                    use_container_width=True, key="explain_adv_maps")
    st.caption("Each method's map of the prediction before and after the attack; ρ is the rank "
               "correlation of |map| between the two. The 'after' maps are drawn over the original image.")
