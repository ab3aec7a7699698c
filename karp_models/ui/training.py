"""The Train page's pieces: session identity, the charts of a set of JobStatus snapshots (built
by ui.figures.training, cached in the LIVE pool of ui.cache) and rendering of one snapshot.

Pages redraw from snapshots (Streamlit's multithreading guide, option 1); nothing here touches a
worker thread.
"""
from __future__ import annotations

import html
import uuid

import plotly.graph_objects as go
import streamlit as st

from karp_models.train.jobs import JobManager, JobStatus, get_manager
from karp_models.train.previews import Captions, Predictions, PreviewFailed, TextSample
from karp_models.ui import cache, glossary, style
from karp_models.ui.caption_views import preview_html
from karp_models.ui.figures import training as figs
from karp_models.ui.figures.training import MAX_POINTS, downsample  # noqa: F401 - re-exported

UNITS = {"samples": "images/s", "tokens": "characters/s"}
STATES = {"queued": "Queued", "running": "Running", "stopped": "Stopped", "done": "Done",
          "error": "Failed"}

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


# --- charts


def run_colors(runs: list[JobStatus]) -> dict[str, str]:
    """A fixed colour per run, in the order the runs were started."""
    return figs.run_colors([r.job_id for r in runs])


def _curve(r: JobStatus, color: str) -> figs.Curve:
    val = [q for q in r.records if q.val_loss is not None]
    return figs.Curve(key=r.job_id, label=r.label, color=color,
                      steps=[q.step for q in r.records], train_loss=[q.train_loss for q in r.records],
                      lr=[q.lr for q in r.records], val_steps=[q.step for q in val],
                      val_loss=[q.val_loss for q in val], val_accuracy=[q.val_accuracy for q in val])


def curves_figure(runs: list[JobStatus], metric: str,
                  colors: dict[str, str] | None = None) -> go.Figure:
    """One chart of `metric` ('loss' | 'accuracy' | 'lr') with every run overlaid (see
    figures.training.curves_figure). colors: job id -> colour, so a run keeps its colour on
    every chart and when others are hidden. Built once per set of records (cached)."""
    colors = colors or run_colors(runs)
    key = ("curves", metric, tuple((r.job_id, len(r.records), r.label, colors.get(r.job_id))
                                   for r in runs))
    return cache.figure(key, lambda: figs.curves_figure(
        [_curve(r, colors.get(r.job_id, style.RUNS[0])) for r in runs], metric), live=True)


def prediction_grid(p: Predictions, job_id: str = "") -> go.Figure:
    """The fixed 16 test images with the model's current guess: green frame right, red wrong."""
    return cache.figure(("grid", job_id, p.step, p.preds), lambda: figs.prediction_grid(
        p.images, p.labels, p.preds, p.classes, p.step), live=True)


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
        st.info(f"**Waiting in the queue: place {r.queue_position}.** {at_once} "
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
    c[0].metric("Training loss", f"{last.train_loss:.3f}" if last else "–",
                help=glossary.tip("loss", "nats"))
    c[1].metric("Validation loss", f"{val.val_loss:.3f}" if val else "–",
                help=glossary.tip("validation", "overfitting"))
    c[2].metric("Validation accuracy",
                f"{val.val_accuracy:.1%}" if val and val.val_accuracy is not None else "–",
                help="The share of validation examples (images, or next characters) it gets right.")
    c[3].metric("Epochs", f"{last.epoch:.2f}" if last else "–", help=glossary.tip("epoch"))


def render_preview(r: JobStatus) -> None:
    """The task's live preview: for image models the prediction grid; for text models the
    latest generated sample; for captioners their captions of a few test scenes; a preview
    that failed says why."""
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
    elif isinstance(p, Captions):
        st.html(preview_html(p.images, p.words, p.probs, p.references, p.correct, p.step,
                             p.language, columns=2, size=style.px(19)))
    elif isinstance(p, PreviewFailed):
        st.caption(f"No preview at step {p.step:,}: {p.message}")
