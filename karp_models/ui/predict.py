"""The Predict page's pieces: input widgets (upload, canvas, camera, test set, sample photos), the
preprocessing strip, top-k bars, filters, feature maps, activation maximisation and filter
evolution as plotly figures. Large fonts throughout (projectors). The math is in
karp_models.preprocess and karp_models.introspect.features.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from karp_models import imagenet
from karp_models import preprocess as pp
from karp_models.introspect import features as feat
from karp_models.ui import loaders

FONT = dict(size=18)
SOURCES = ("📁 Upload", "✏️ Draw", "📷 Camera", "🧪 Test image", "🖼️ Sample photo")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]

PROJECTOR_CSS = """<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p { font-size: 1.15rem; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.1rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1rem; }
</style>"""


def projector_css() -> None:
    """Larger text on this page (it is shown on projectors); gone when another page opens."""
    st.markdown(PROJECTOR_CSS, unsafe_allow_html=True)


# ---------------------------------------------------------------------------- the model being used


@dataclass(frozen=True)
class Target:
    """What the page runs: a karp checkpoint or an ImageNet model, with what preprocessing needs."""

    model: torch.nn.Module
    key: str                  # cache key: file path + mtime, or 'imagenet:<name>'
    classes: tuple[str, ...]
    dataset: str              # 'fashion-mnist', ..., or 'imagenet'
    channels: int
    size: int
    resize: int | None        # ImageNet: shorter side before the centre crop
    origin: str               # 'shipped' | 'run' | 'imagenet'
    title: str
    meta: dict


def karp_target(ck, choice) -> Target:
    cfg = ck.model.config
    classes = tuple(ck.meta.get("classes") or [str(i) for i in range(cfg.n_classes)])
    return Target(model=ck.model, key=f"{choice.path}:{choice.mtime}", classes=classes,
                  dataset=choice.dataset, channels=cfg.in_channels, size=cfg.image_size, resize=None,
                  origin=choice.origin, title=choice.label, meta=ck.meta)


@st.cache_resource(max_entries=2, show_spinner="Loading the ImageNet model…")
def imagenet_model(name: str, download: bool = False) -> imagenet.ImageNetModel:
    """Shared by every session; never mutated (features.maximise works on a copy)."""
    return imagenet.load(name, download=download)


def imagenet_picker() -> Target | None:
    """A selectbox over the torchvision models; None (with how to get the weights) if missing."""
    names = list(imagenet.ARCHS)

    def label(n: str) -> str:
        a = imagenet.ARCHS[n]
        acc = a.weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        where = "cached ✅" if imagenet.is_cached(n) else f"not here, {imagenet.size_mb(n):.0f} MB"
        return f"{a.title} (ImageNet top-1 {acc:.1f}%, {where})"

    name = st.selectbox("ImageNet model", names, format_func=label, key="predict_imagenet")
    download = st.session_state.get(f"predict_download_{name}", False)
    try:
        m = imagenet_model(name, download=download and not imagenet.is_cached(name))
    except imagenet.WeightsUnavailable as e:
        st.session_state[f"predict_download_{name}"] = False
        st.warning("**These pretrained weights are not available here.** Everything else on this "
                   "page still works: the input and its preprocessing below.")
        st.code(str(e), language=None, wrap_lines=True)
        if st.button(f"Try to download them now ({imagenet.size_mb(name):.0f} MB)",
                     key=f"predict_download_btn_{name}"):
            st.session_state[f"predict_download_{name}"] = True
            st.rerun()
        return None
    return Target(model=m, key=f"imagenet:{name}", classes=m.classes, dataset="imagenet",
                  channels=3, size=m.image_size, resize=m.resize_size, origin="imagenet",
                  title=m.title, meta={})


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Raw:
    """An input before preprocessing: file bytes (upload, camera), or an RGB array."""

    source: str
    data: bytes | None = None
    rgb: np.ndarray | None = None
    name: str = ""


@st.cache_data(max_entries=32, show_spinner="Reading the image…")
def run_pipeline(data: bytes | None, rgb: np.ndarray | None, name: str, style: str, size: int,
                 channels: int, resize: int | None) -> tuple[pp.Decoded | None, pp.Pipeline]:
    """decode (bytes) then preprocess; raises pp.ImageError for a bad file."""
    if data is not None:
        return pp.preprocess_file(data, name, style, size=size, channels=channels, resize=resize)
    return None, pp.preprocess(rgb, style, size=size, channels=channels, resize=resize)


def handle_raw(raw: Raw, t: Target) -> tuple[pp.Decoded | None, pp.Pipeline] | None:
    """The page's handler for any upload/camera/drawing/photo: the pipeline, or None after a
    clear message on the page (never a traceback)."""
    style = pp.style_for(t.dataset)
    try:
        return run_pipeline(raw.data, raw.rgb, raw.name, style, t.size, t.channels, t.resize)
    except pp.ImageError as e:
        st.error(f"**This image cannot be used.** {e}", icon="🚫")
    except Exception as e:  # noqa: BLE001 - any other decoder failure is still a bad file
        st.error(f"**This image cannot be used.** It could not be read "
                 f"({type(e).__name__}: {e}). Try another file.", icon="🚫")
    return None


def canvas_input() -> Raw | None:
    """A black 280x280 canvas to draw on in white (like MNIST's bright ink on black)."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as e:  # noqa: BLE001 - the package or its frontend is missing
        st.warning(f"Drawing needs `streamlit-drawable-canvas` ({type(e).__name__}: {e}).")
        return None
    st.write("")                                                      # room for the canvas toolbar
    c1, c2 = st.columns([3, 2])
    with c2:
        width = st.slider("Pen width", 6, 40, 20, key="predict_pen")
        st.caption("Draw a digit or a piece of clothing, big, in the middle. The canvas is black "
                   "with a white pen, as the datasets are. The toolbar above it has undo and reset.")
    with c1:
        res = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                        height=280, width=280, drawing_mode="freedraw", return_image_data=True,
                        key="predict_canvas")
    img = getattr(res, "image_data", None) if res is not None else None
    if img is None or np.asarray(img)[..., :3].max() < 10:
        st.info("Draw something on the canvas.")
        return None
    a = np.asarray(img)
    rgb = a[..., :3] if a.shape[-1] == 4 else a                       # black background, opaque
    return Raw(source="drawing", rgb=np.ascontiguousarray(rgb.astype(np.uint8)), name="drawing")


def test_image_input(t: Target):
    """(ImageInput, index) of the chosen test image, or None when the dataset is absent."""
    from karp_models.ui.selection import test_image

    if t.dataset == "imagenet":
        st.info("ImageNet's images are not shipped with karp: upload a photo, use the camera or "
                "pick a sample photo.")
        return None
    try:
        ds = loaders.dataset(t.dataset)
    except Exception as e:  # noqa: BLE001 - data.load explains what is missing
        st.error(f"The dataset {t.dataset!r} is not here: {e}")
        return None
    n = len(ds.test_y)
    c1, c2 = st.columns([3, 1])
    if c2.button("🎲 Random", key="predict_random"):
        st.session_state["predict_test_index"] = int(np.random.default_rng().integers(n))
    idx = c1.number_input(f"Test image (0 to {n - 1:,})", 0, n - 1, key="predict_test_index")
    return test_image(ds, int(idx))


def raw_from_source(source: str, t: Target):
    """The widgets of one input source; returns a Raw, an ImageInput (test set) or None."""
    if source == SOURCES[0]:
        f = st.file_uploader("An image file: PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF; any "
                             "size up to 64 megapixels, any colour mode", type=UPLOAD_TYPES,
                             key="predict_upload")
        return Raw(source=f"upload: {f.name}", data=f.getvalue(), name=f.name) if f else None
    if source == SOURCES[1]:
        return canvas_input()
    if source == SOURCES[2]:
        f = st.camera_input("Take a photo of a shoe, a shirt, a bag, or a digit on paper",
                            key="predict_camera")
        return Raw(source="camera photo", data=f.getvalue(), name="camera.jpg") if f else None
    if source == SOURCES[3]:
        return test_image_input(t)
    photos = loaders.sample_photos()
    if not photos:
        st.info("No sample photos here (they come with scikit-image).")
        return None
    name = st.selectbox("Sample photo (from scikit-image)", list(photos), key="predict_photo")
    return Raw(source=f"sample photo: {name}", rgb=np.asarray(photos[name]), name=name)


# ---------------------------------------------------------------------------- display helpers


def big(img: np.ndarray, side: int = 168) -> np.ndarray:
    """Upscale a small image with nearest neighbour (pixels stay visible) or shrink a large one."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * 255, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    s = side / max(h, w)
    interp = cv2.INTER_NEAREST if s >= 1 else cv2.INTER_AREA
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)


def x_image(x: np.ndarray) -> np.ndarray:
    """A model input (C, H, W) in [0, 1] as an uint8 image for st.image."""
    a = np.clip(np.asarray(x) * 255, 0, 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def show_pipeline(decoded: pp.Decoded | None, pipe: pp.Pipeline) -> None:
    """Every preprocessing step side by side, with what was done."""
    steps = pipe.steps
    cols = st.columns(len(steps))
    for i, (c, s) in enumerate(zip(cols, steps)):
        with c:
            st.markdown(f"**{i + 1}. {s.name}**")
            st.image(big(s.image, 200 if i == 0 else 150))
            if s.note:
                st.caption(s.note)
    for n in pipe.notes:
        st.warning(n)
    if decoded is not None:
        st.caption(f"File: {decoded.format}, {decoded.size[0]:,} x {decoded.size[1]:,} pixels, "
                   f"colour mode {decoded.mode}.")


def topk_figure(top: list[tuple[str, float]]) -> go.Figure:
    names = [n for n, _ in top][::-1]
    vals = [p for _, p in top][::-1]
    colors = ["#9ca3af"] * (len(top) - 1) + ["#2563eb"]
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", marker_color=colors,
                           text=[f"{v:.1%}" for v in vals], textposition="outside",
                           textfont=dict(size=20), cliponaxis=False))
    fig.update_layout(font=FONT, height=70 + 48 * len(top), margin=dict(l=10, r=60, t=10, b=30),
                      xaxis=dict(range=[0, 1.12], tickformat=".0%", title="probability"),
                      yaxis=dict(tickfont=dict(size=20), type="category"))
    return fig


def filters_figure(w: np.ndarray, scale=None, height: int | None = None) -> go.Figure:
    """First-layer filters: blue negative, white zero, red positive weights (grayscale input), or
    the filters as colour images (RGB input). One square per filter, numbered by hover."""
    imgs = feat.filter_images(w, scale)                                 # (O, kh, kw[, 3]) in [0, 1]
    O, kh, kw = imgs.shape[:3]
    cols = min(O, 8 if O <= 64 else 16)
    rows = int(np.ceil(O / cols))
    gap = max(1, kh // 5)
    H, W = rows * (kh + gap) - gap, cols * (kw + gap) - gap
    idx = np.full((H, W), -1)
    if imgs.ndim == 4:
        grid = np.full((H, W, 3), 255, np.uint8)
    else:
        grid = np.full((H, W), np.nan, np.float32)
    for o in range(O):
        r, c = divmod(o, cols)
        ys, xs = slice(r * (kh + gap), r * (kh + gap) + kh), slice(c * (kw + gap), c * (kw + gap) + kw)
        grid[ys, xs] = (imgs[o] * 255).astype(np.uint8) if imgs.ndim == 4 else imgs[o] * 2 - 1
        idx[ys, xs] = o
    if imgs.ndim == 4:
        fig = go.Figure(go.Image(z=grid, customdata=idx, hovertemplate="filter %{customdata}<extra></extra>"))
    else:
        fig = go.Figure(go.Heatmap(z=grid, zmin=-1, zmax=1, colorscale="RdBu_r", customdata=idx,
                                   hovertemplate="filter %{customdata}: %{z:.2f}<extra></extra>",
                                   colorbar=dict(title="weight", tickvals=[-1, 0, 1],
                                                 ticktext=["−max", "0", "+max"])))
        fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(font=FONT, height=height or int(np.clip(900 * H / W, 200, 800)),
                      margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white")
    return fig


def maps_figure(maps: np.ndarray) -> go.Figure:
    """All channels of one layer as a grid (each scaled to its own range), channel on hover."""
    grid, cols = feat.map_grid(maps)
    C, H, W = maps.shape
    chan = np.full(grid.shape, -1)
    for c in range(C):
        r, k = divmod(c, cols)
        chan[r * (H + 1):r * (H + 1) + H, k * (W + 1):k * (W + 1) + W] = c
    rows = int(np.ceil(C / cols))
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Viridis", customdata=chan, showscale=False,
                               hovertemplate="channel %{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    fig.update_layout(font=FONT, height=int(min(760, max(320, 720 * rows / cols))),
                      margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white")
    return fig


def channel_figure(m: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=m, colorscale="Viridis",
                               hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    fig.update_layout(title=title, font=FONT, height=430, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def objective_figure(values: list[float]) -> go.Figure:
    fig = go.Figure(go.Scatter(y=values, mode="lines", line=dict(width=3)))
    fig.update_layout(font=FONT, height=260, margin=dict(l=10, r=10, t=40, b=10),
                      title="objective (should rise)", xaxis_title="step")
    return fig


# ---------------------------------------------------------------------------- cached computations


def image_key(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_figure(key: tuple, _build) -> go.Figure:
    """A figure built once per key (the model's cache key, the image's hash, the layer...) and
    shared by every session: building a plotly figure costs more CPU than the rest of a Predict
    rerun. Never mutated: st.plotly_chart works on a copy (Figure.to_dict)."""
    return _build()


@st.cache_data(max_entries=16, show_spinner=False)
def look(_model: torch.nn.Module, key: str, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(probabilities, feature maps per layer) of one input; `key` names the model for the cache."""
    return feat.feature_maps(_model, torch.from_numpy(x)[None])


# ---------------------------------------------------------------------------- filter evolution


def _evolution_runs(t: Target) -> tuple[dict[str, list], bool]:
    """{name: [(step, weights)]} of this session's image runs and of the chosen saved run; and
    whether one of them is still training."""
    from karp_models.ui.training import manager, session_id

    runs, active = {}, False
    for j in manager().jobs(session_id()):
        if j.snapshots:
            runs[f"this session: {j.label} ({j.state})"] = list(j.snapshots)
            active |= j.active
    evo = t.meta.get("filter_evolution")
    if evo:
        runs[f"saved run: {t.title}"] = [(s, np.asarray(w, np.float32))
                                         for s, w in zip(evo["steps"], evo["weights"])]
    return runs, active


def evolution_tab(t: Target) -> None:
    """A slider over training time for the first-layer filters of a run (redraws while it trains)."""
    runs, active = _evolution_runs(t)

    @st.fragment(run_every=3.0 if active else None)
    def body() -> None:
        runs, _ = _evolution_runs(t)
        if not runs:
            why = ("The shipped weights were trained with the command line, which keeps only the "
                   "final weights, so there is no history to replay." if t.origin == "shipped" else
                   "ImageNet weights come finished from torchvision: their training history is "
                   "not published." if t.origin == "imagenet" else
                   "This saved run has no snapshots (it was saved before karp kept them).")
            st.info(f"**Filter evolution is not available for this model.** {why} Train an image "
                    f"model on the **Train** page: its first-layer filters are photographed at "
                    f"every preview (every 50 steps), shown here while this browser session "
                    f"lasts, and 32 of them are kept when you save the run.")
            return
        pick = st.selectbox("Run", list(runs), key="predict_evo_run")
        snaps = runs[pick]
        steps = [s for s, _ in snaps]
        if len(snaps) == 1:
            i = 0
            st.info(f"One snapshot so far (step {steps[0]:,}); the next comes with the run's next "
                    f"preview. This view refreshes by itself while the run trains.")
        else:
            i = st.select_slider("Training step", options=list(range(len(steps))),
                                 value=len(steps) - 1, format_func=lambda k: f"{steps[k]:,}",
                                 key=f"predict_evo_step_{pick}_{len(steps)}")
        ws = np.stack([w for _, w in snaps])
        scale = np.abs(ws).reshape(ws.shape[0], ws.shape[1], -1).max(2).max(0)
        st.markdown(f"**Step {steps[i]:,}** of {steps[-1]:,}: every filter on one scale across "
                    f"the run (its largest weight ever), so you see them grow from random noise "
                    f"into edge and blob detectors.")
        st.plotly_chart(filters_figure(snaps[i][1], scale), key="predict_evo_fig")

    body()
