"""The Train page's pieces: session identity, plotly curves (downsampled), the prediction grid,
and rendering of a JobStatus snapshot. Large fonts throughout: the app is shown on projectors.

Pages redraw from snapshots (Streamlit's multithreading guide, option 1); nothing here touches a
worker thread. Downsampling keeps every trace at most MAX_POINTS points, so a 20,000-step run
redraws as fast as a 200-step one.
"""
from __future__ import annotations

import base64
import html
import io
import uuid

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from karp_models.train.jobs import JobManager, JobStatus, get_manager
from karp_models.train.previews import Predictions, PreviewFailed, TextSample

FONT = dict(size=18)
MAX_POINTS = 500
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22")
RIGHT, WRONG = (22, 163, 74), (220, 38, 38)
UNITS = {"samples": "images/s", "tokens": "characters/s"}
STATES = {"queued": "⏳ queued", "running": "🏃 running", "stopped": "⏸ stopped", "done": "✅ done",
          "error": "❌ failed"}

# --- session identity and liveness


def session_id() -> str:
    """This browser tab's id for the job manager: '<streamlit session id>/<uuid>'.

    The uuid makes it unique even where Streamlit's id is not (AppTest uses a fixed one); the
    Streamlit part lets the manager ask the runtime whether the tab is still connected.
    """
    if "train_session_id" not in st.session_state:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        st.session_state["train_session_id"] = (
            f"{ctx.session_id if ctx else 'none'}/{uuid.uuid4().hex[:12]}")
    return st.session_state["train_session_id"]


def tab_connected(sid: str) -> bool | None:
    """True while the tab's websocket is connected; None when that cannot be known."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    ok = runtime.get_instance().is_active_session(sid.split("/", 1)[0])
    return ok if isinstance(ok, bool) else None  # AppTest's runtime is a mock


def manager() -> JobManager:
    """The process-wide JobManager, told how to ask Streamlit whether a tab is open."""
    m = get_manager()
    m.set_liveness(tab_connected)
    return m


# --- curves


def downsample(x: list[float], y: list[float], max_points: int = MAX_POINTS
               ) -> tuple[list[float], list[float]]:
    """At most max_points evenly spaced points, always keeping the first and the last."""
    n = len(x)
    if n <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return [x[i] for i in idx], [y[i] for i in idx]


def _layout(fig: go.Figure, title: str, ytitle: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=dict(text=title, font=dict(size=22)), font=FONT, height=height,
                      margin=dict(l=10, r=10, t=50, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
                      uirevision="train")  # keep zoom while points arrive
    fig.update_xaxes(title_text="step", rangemode="tozero")
    fig.update_yaxes(title_text=ytitle)
    return fig


def _trace_name(run: str, what: str) -> str:
    return " · ".join(p for p in (run, what) if p) or "value"


_FIGURES: dict[tuple, go.Figure] = {}  # shared by sessions: redraws between records are free


def _cached(key: tuple, build) -> go.Figure:
    fig = _FIGURES.get(key)
    if fig is None:
        fig = _FIGURES[key] = build()
        while len(_FIGURES) > 64:
            _FIGURES.pop(next(iter(_FIGURES)), None)
    return fig


def curves_figure(runs: list[JobStatus], metric: str,
                  colors: dict[str, str] | None = None) -> go.Figure:
    """One chart of `metric` ('loss' | 'accuracy' | 'lr') with every run overlaid.

    loss: training (line) and validation (dashed, markers); accuracy: validation accuracy in %;
    lr: the learning rate the optimizer used. colors: job id -> colour, so a run keeps its
    colour on every chart and when others are hidden; only the loss chart has a legend.
    Built once per set of records (cached).
    """
    colors = colors or {r.job_id: COLORS[i % len(COLORS)] for i, r in enumerate(runs)}
    key = ("curves", metric, tuple((r.job_id, len(r.records), r.label, colors.get(r.job_id))
                                   for r in runs))
    return _cached(key, lambda: _curves(runs, metric, colors))


def run_colors(runs: list[JobStatus]) -> dict[str, str]:
    """A fixed colour per run, in the order the runs were started."""
    return {r.job_id: COLORS[i % len(COLORS)] for i, r in enumerate(runs)}


def _curves(runs: list[JobStatus], metric: str, colors: dict[str, str]) -> go.Figure:
    fig = go.Figure()
    many = len(runs) > 1
    for r in runs:
        color = colors.get(r.job_id, COLORS[0])
        recs = r.records
        if metric in ("loss", "lr"):
            key = "train_loss" if metric == "loss" else "lr"
            x, y = downsample([q.step for q in recs], [getattr(q, key) for q in recs])
            fig.add_scatter(x=x, y=y, mode="lines", line=dict(color=color, width=3),
                            name=_trace_name(r.label if many else "",
                                             "training" if metric == "loss" else ""),
                            legendgroup=r.job_id)
        if metric in ("loss", "accuracy"):
            val = [q for q in recs if q.val_loss is not None]
            key = "val_loss" if metric == "loss" else "val_accuracy"
            vx, vy = downsample([q.step for q in val],
                                [getattr(q, key) * (100 if metric == "accuracy" else 1)
                                 if getattr(q, key) is not None else None for q in val])
            fig.add_scatter(x=vx, y=vy, mode="lines+markers",
                            line=dict(color=color, width=3, dash="dash" if metric == "loss"
                                      else "solid"), marker=dict(size=9),
                            name=_trace_name(r.label if many else "",
                                             "validation" if metric == "loss" else ""),
                            legendgroup=r.job_id)
    titles = {"loss": ("Loss", "cross-entropy (nats)"), "accuracy": ("Validation accuracy", "%"),
              "lr": ("Learning rate", "lr")}
    _layout(fig, *titles[metric], height=380 if metric != "lr" else 260)
    if metric == "lr":
        fig.update_yaxes(exponentformat="e")
    if metric != "loss":  # the loss chart's legend names the runs; colours match across charts
        fig.update_layout(showlegend=False, margin=dict(b=10))
    return fig


# --- the prediction grid


def _gap(tile_h: int) -> int:
    return max(8, int(tile_h * 0.55))


def _montage(p: Predictions, scale: int, border: int) -> np.ndarray:
    """4 x 4 tiles, each framed green (right) or red (wrong): (rows, cols, 3) uint8."""
    x = p.images  # (16, C, H, W) uint8
    N, C, H, W = x.shape
    cols = 4
    rows = (N + cols - 1) // cols
    th, tw = H * scale + 2 * border, W * scale + 2 * border
    gap = _gap(th)  # room for the label under each tile
    out = np.full((rows * (th + gap), cols * (tw + 6), 3), 255, dtype=np.uint8)
    for k in range(N):
        img = x[k].transpose(1, 2, 0)  # (H, W, C)
        if C == 1:
            img = np.repeat(img, 3, axis=2)
        img = img.repeat(scale, axis=0).repeat(scale, axis=1)
        tile = np.empty((th, tw, 3), dtype=np.uint8)
        tile[:] = RIGHT if p.preds[k] == p.labels[k] else WRONG
        tile[border:border + H * scale, border:border + W * scale] = img
        r, c = divmod(k, cols)
        out[r * (th + gap):r * (th + gap) + th, c * (tw + 6):c * (tw + 6) + tw] = tile
    return out


def prediction_grid(p: Predictions, job_id: str = "") -> go.Figure:
    """The fixed 16 test images with the model's current guess: green frame right, red wrong."""
    return _cached(("grid", job_id, p.step, p.preds), lambda: _grid(p))


def _grid(p: Predictions) -> go.Figure:
    H = p.images.shape[2]
    scale = max(1, 96 // H)
    border = max(3, scale * H // 20)
    grid = _montage(p, scale, border)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    fig = go.Figure(go.Image(source=src, hoverinfo="skip"))
    th = H * scale + 2 * border
    tw = p.images.shape[3] * scale + 2 * border
    gap = _gap(th)
    for k, (y, pred) in enumerate(zip(p.labels, p.preds)):
        r, c = divmod(k, 4)
        ok = pred == y
        text = f"✓ {p.classes[pred]}" if ok else f"✗ {p.classes[pred]}<br>(is {p.classes[y]})"
        fig.add_annotation(x=c * (tw + 6) + tw / 2, y=r * (th + gap) + th + gap / 2, text=text,
                           showarrow=False, font=dict(size=15, color="#15803d" if ok else "#b91c1c"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=50, b=0), height=640, font=FONT,
                      title=dict(text=f"Test images at step {p.step:,}: {p.correct} of "
                                      f"{len(p.labels)} right", font=dict(size=20)))
    return fig


# --- rendering a snapshot


def fmt_eta(s: float | None) -> str:
    if s is None:
        return "ETA …"
    s = int(round(s))
    return f"ETA {s // 60} min {s % 60:02d} s" if s >= 60 else f"ETA {s} s"


def progress_text(r: JobStatus) -> str:
    total = f" / {r.total_steps:,}" if r.total_steps else ""
    parts = [STATES.get(r.state, r.state), f"step {r.step:,}{total}", f"{r.progress:.0%}"]
    if r.state == "running":
        parts.append(fmt_eta(r.eta_s))
    if r.throughput:
        parts.append(f"{r.throughput:,.0f} {UNITS.get(r.unit, r.unit + '/s')}")
    return " · ".join(parts)


def render_status(r: JobStatus, limit: int = 1) -> None:
    """State, queue place, error, progress bar and the latest numbers of one run."""
    if r.state == "queued":
        at_once = "One training job runs" if limit == 1 else f"{limit} training jobs run"
        st.info(f"⏳ **Waiting in the queue: place {r.queue_position}.** {at_once} "
                f"at a time on the {r.device.upper()}; this one starts when the jobs before it "
                f"finish or stop.")
    elif r.state == "error":
        st.error(f"**This run failed:** {r.error}")
        with st.expander("Details (traceback)"):
            st.code(r.error_detail or "", language="text")
    elif r.stop_requested:
        st.warning("Stopping: one last evaluation on the whole test/validation split…")
    elif r.state == "running" and not r.records:
        st.info("Loading the data and building the model…")
    st.progress(min(1.0, max(0.0, r.progress)), text=progress_text(r))
    last = r.last
    val = next((q for q in reversed(r.records) if q.val_loss is not None), None)
    c = st.columns(4)
    c[0].metric("Training loss", f"{last.train_loss:.3f}" if last else "–")
    c[1].metric("Validation loss", f"{val.val_loss:.3f}" if val else "–")
    c[2].metric("Validation accuracy",
                f"{val.val_accuracy:.1%}" if val and val.val_accuracy is not None else "–")
    c[3].metric("Epochs", f"{last.epoch:.2f}" if last else "–")


def render_preview(r: JobStatus) -> None:
    """The task's live preview: for image models the prediction grid; for text models the
    latest generated sample; a preview that failed says why."""
    p = r.preview
    if isinstance(p, Predictions):
        st.plotly_chart(prediction_grid(p, r.job_id), width="stretch",
                        config={"displayModeBar": False}, key="train_grid")
    elif isinstance(p, TextSample):
        st.markdown(f"**Sampled from the model at step {p.step:,}** "
                    f"(a new sample every few hundred steps)")
        st.html(f"<pre style='font-size:19px; line-height:1.35; white-space:pre-wrap; "
                f"background:#f6f8fa; padding:12px; border-radius:8px'>"
                f"{html.escape(p.text)}</pre>")
    elif isinstance(p, PreviewFailed):
        st.caption(f"No preview at step {p.step:,}: {p.message}")


def big_fonts() -> None:
    """Projector-sized text for the page's widgets and metrics."""
    st.html("""<style>
    [data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] p,
    [data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] li,
    [data-testid="stMainBlockContainer"] [data-testid="stCaptionContainer"] p {font-size: 1.15rem;}
    [data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] p {font-size: 2.6rem;
        line-height: 1.2;}
    [data-testid="stMainBlockContainer"] [data-testid="stMetricLabel"] p {font-size: 1.15rem;}
    </style>""")
