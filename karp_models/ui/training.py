"""The Train page's pieces: the owner of this tab's runs (the browser's work identity) and its
open tabs, the charts of a set of JobStatus snapshots (built by ui.figures.training, cached in
the LIVE pool of ui.cache) and rendering of one snapshot, with its autosave and recovery state.

Pages redraw from snapshots (Streamlit's multithreading guide, option 1); nothing here touches a
worker thread.
"""
from __future__ import annotations

import html
import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from karp_models.i18n import N_, _, language, ngettext
from karp_models.train.jobs import JobManager, JobStatus, get_manager
from karp_models.train.previews import Captions, Chart, Predictions, PreviewFailed, TextSample
from karp_models.train.tasks.generative import Samples
from karp_models.ui import cache, glossary, identity, style
from karp_models.ui.caption_views import preview_html
from karp_models.ui.figures import generative as gen_figs
from karp_models.ui.figures import training as figs
from karp_models.ui.figures.training import MAX_POINTS, downsample  # noqa: F401 - re-exported
from karp_models.ui.loaders import class_names

UNITS = {"samples": N_("{rate:,.0f} images/s"), "tokens": N_("{rate:,.0f} characters/s")}   # shown with _()
STATES = {"queued": N_("Queued"), "running": N_("Running"), "stopped": N_("Stopped"), "done": N_("Done"),
          "error": N_("Failed")}

# --- the owner of this tab's runs, and whether any of its tabs is open


def session_id() -> str:
    """The owner this tab's runs belong to: its browser's work identity (ui/identity.py), so a
    refreshed or reopened tab of the same browser has the same one."""
    sid = identity.owner()
    st.session_state["train_session_id"] = sid
    note_tab()
    return sid


def note_tab() -> None:
    """Tell the manager this tab belongs to this browser's owner, so its runs stay alive while
    any of its tabs is open, on any page (app.py calls it on every page)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        manager().note_tab(identity.owner(), ctx.session_id)


def tab_connected(tab: str) -> bool | None:
    """True while this tab's websocket is connected; None when that cannot be known."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    ok = runtime.get_instance().is_active_session(tab)
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


def _scalars(r: JobStatus, color: str, chart: Chart) -> figs.Scalars:
    val = [q for q in r.records if q.val_loss is not None or any(k.startswith("val_") for k in q.scalars)]
    floor = next((q.scalars.get(f"val_{chart.floor}") for q in reversed(r.records) if q.final),
                 None) if chart.floor else None
    return figs.Scalars(key=r.job_id, label=r.label, color=color, steps=[q.step for q in r.records],
                        values={n: [q.scalars.get(n) for q in r.records] for n in chart.names},
                        val_steps=[q.step for q in val],
                        val_values={n: [q.scalars.get(f"val_{n}") for q in val] for n in chart.names},
                        floor=floor)


def chart_figure(runs: list[JobStatus], chart: Chart, colors: dict[str, str] | None = None) -> go.Figure:
    """One of a task's named charts (previews.Chart) with every run overlaid; cached like the
    curves (per set of records and language)."""
    colors = colors or run_colors(runs)
    key = ("chart", chart, language(), tuple((r.job_id, len(r.records), r.label, colors.get(r.job_id))
                                             for r in runs))
    return cache.figure(key, lambda: figs.scalars_figure(
        [_scalars(r, colors.get(r.job_id, style.RUNS[0]), chart) for r in runs], _(chart.title),
        chart.names, [_(lab) for lab in chart.labels], _(chart.axis), train=chart.train,
        val=chart.val, log=chart.log, floor_label=_("real images")), live=True)


def has_values(runs: list[JobStatus], chart: Chart) -> bool:
    """Whether any run has a value of the chart yet (training or evaluations)."""
    keys = [n for n in chart.names if chart.train] + [f"val_{n}" for n in chart.names if chart.val]
    return any(k in q.scalars for r in runs for q in r.records for k in keys)


def show_chart(runs: list[JobStatus], cur: JobStatus, chart: Chart, colors: dict[str, str],
               key: str) -> None:
    """A task's chart, or a line saying why it is empty (nothing yet, or not measured here:
    a Frechet distance needs a trained classifier of the dataset)."""
    if has_values(runs, chart):
        style.chart(chart_figure(runs, chart, colors), key=key)
    elif cur.active:
        st.caption(_("**{title}**: nothing measured yet.").format(title=_(chart.title)))
    else:
        st.caption(_("**{title}**: not measured for this run.").format(title=_(chart.title)))


def headline(r: JobStatus, n: int = 4) -> list[tuple[str, str]]:
    """Up to n (label, value) of a run with named charts: each chart's values in order, the
    latest training value (or, for a chart of evaluations only, the latest evaluation's)."""
    out = []
    for chart in r.charts:
        for name, label in zip(chart.names, chart.labels):
            key = name if chart.train else f"val_{name}"
            v = next((q.scalars[key] for q in reversed(r.records) if key in q.scalars), None)
            text = "–" if v is None else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
            label = _(label)
            out.append((label[:1].upper() + label[1:], text))
    return out[:n]


def prediction_grid(p: Predictions, job_id: str = "") -> go.Figure:
    """The fixed 16 test images with the model's current guess: green frame right, red wrong."""
    return cache.figure(("grid", job_id, p.step, p.preds), lambda: figs.prediction_grid(
        p.images, p.labels, p.preds, class_names(p.classes), p.step), live=True)


# --- rendering a snapshot


def fmt_eta(s: float | None) -> str:
    if s is None:
        return _("ETA …")
    s = int(round(s))
    return (_("ETA {min} min {s:02d} s").format(min=s // 60, s=s % 60) if s >= 60
            else _("ETA {s} s").format(s=s))


def progress_text(r: JobStatus) -> str:
    step = (_("step {step:,} / {total:,}") if r.total_steps else _("step {step:,}")).format(
        step=r.step, total=r.total_steps)
    parts = [_(STATES[r.state]) if r.state in STATES else r.state, step, f"{r.progress:.0%}"]
    if r.state == "running":
        parts.append(fmt_eta(r.eta_s))
    if r.throughput:
        parts.append(_(UNITS[r.unit]).format(rate=r.throughput) if r.unit in UNITS
                     else f"{r.throughput:,.0f} {r.unit}/s")
    return " · ".join(parts)


def render_status(r: JobStatus, limit: int = 1) -> None:
    """State, queue place, error, progress bar and the latest numbers of one run."""
    if r.stale:   # a Ray cluster that does not answer: what it said last
        st.warning(_("**Last known state:** the training cluster does not answer, so this run may "
                     "have moved on, stopped or failed since; it shows as it is once the cluster "
                     "is back."), icon=":material/cloud_off:")
    if r.state == "queued":
        st.info(ngettext("**Waiting in the queue: place {place}.** {n} training job runs at a time on the "
                         "{device}; this one starts when the jobs before it finish or stop.",
                         "**Waiting in the queue: place {place}.** {n} training jobs run at a time on the "
                         "{device}; this one starts when the jobs before it finish or stop.", limit).format(
                             place=r.queue_position, n=limit, device=r.device.upper()))
    elif r.state == "error" and r.on_disk and not r.where:   # on a cluster: failed in its task, said below
        st.error(_("**This run could not be read back from its autosave:** {why} It is still "
                   "kept; press Resume to try again.").format(why=r.error))
    elif r.state == "error":
        st.error(_("**This run failed:** {error}").format(error=r.error))
        with st.expander(_("Details (traceback)")):
            st.code(r.error_detail or "", language="text")
    elif r.stop_requested:
        st.warning(_("Stopping: one last evaluation on the whole test/validation split…"))
    elif r.state == "stopped" and r.interrupted:
        st.warning(_("**Interrupted at step {step:,}:** the server stopped while this run was "
                     "training. It was kept as its last autosave left it; **Resume** continues "
                     "from there exactly as if it had never stopped.").format(step=r.step),
                   icon=":material/restart_alt:")
    elif r.state == "stopped" and r.paused:
        st.info(_("**Paused at step {step:,}** because no tab of yours was open for a while. It "
                  "is kept on this server; **Resume** continues from there.").format(step=r.step),
                icon=":material/pause_circle:")
    elif r.state == "running" and r.on_disk:
        st.info(_("Reading the run back from its autosave…"))
    elif r.state == "running" and not r.records:
        st.info(_("Loading the data and building the model…"))
    st.progress(min(1.0, max(0.0, r.progress)), text=progress_text(r))
    last = r.last
    if r.charts:                               # the task names its own numbers (a GAN, a VAE)
        shown = headline(r)
        c = st.columns(4)
        for col, (label, value) in zip(c, shown):
            col.metric(label, value)
        if len(shown) < 4:
            c[len(shown)].metric(_("Epochs"), f"{last.epoch:.2f}" if last else "–",
                                 help=glossary.tip("epoch"))
        return
    val = next((q for q in reversed(r.records) if q.val_loss is not None), None)
    c = st.columns(4)
    c[0].metric(_("Training loss"), f"{last.train_loss:.3f}" if last else "–",
                help=glossary.tip("loss", "nats"))
    c[1].metric(_("Validation loss"), f"{val.val_loss:.3f}" if val else "–",
                help=glossary.tip("validation", "overfitting"))
    c[2].metric(_("Validation accuracy"),
                f"{val.val_accuracy:.1%}" if val and val.val_accuracy is not None else "–",
                help=_("The share of validation examples (images, or next characters) it gets right."))
    c[3].metric(_("Epochs"), f"{last.epoch:.2f}" if last else "–", help=glossary.tip("epoch"))


def ago(seconds: float) -> str:
    """'12 s ago', '3 min ago', '5 h ago', '2 days ago'."""
    s = max(0, int(seconds))
    if s < 60:
        return _("{n} s ago").format(n=s)
    if s < 3600:
        return _("{n} min ago").format(n=s // 60)
    if s < 48 * 3600:
        return _("{n} h ago").format(n=s // 3600)
    return _("{n} days ago").format(n=s // 86400)


def autosave_text(r: JobStatus, every_s: float | None, every_steps: int, keep_done_h: float,
                  now: float | None = None) -> str:
    """The line under a run's status saying where its autosave stands and what a restart of the
    server would lose ('' when autosave is off)."""
    now = time.time() if now is None else now
    if every_s:
        every = _("{n} s").format(n=f"{every_s:g}")
    elif every_steps:
        every = _("{n} steps").format(n=f"{every_steps:,}")
    else:
        return ""
    if r.state == "running":
        if r.autosaved_at is None:
            return _("Autosaved every {every} of training: a restart of the server loses at most "
                     "that much.").format(every=every)
        return _("Autosaved at step {step:,}, {when}; every {every} of training, so a restart of "
                 "the server loses at most that much.").format(
                     step=r.autosaved_step, when=ago(now - r.autosaved_at), every=every)
    if r.autosaved_at is None:
        return ""
    if r.state == "done":
        return _("Kept on this server (autosaved {when}) for {hours:g} hours: save it under a name "
                 "to keep it for good.").format(when=ago(now - r.autosaved_at), hours=keep_done_h)
    return _("Kept on this server as autosaved at step {step:,}, {when}.").format(
        step=r.autosaved_step, when=ago(now - r.autosaved_at))


def render_preview(r: JobStatus) -> None:
    """The task's live preview: for image models the prediction grid; for text models the
    latest generated sample; for captioners their captions of a few test scenes; a preview
    that failed says why."""
    p = r.preview
    if isinstance(p, Predictions):
        st.plotly_chart(prediction_grid(p, r.job_id), width="stretch",
                        config={"displayModeBar": False}, key="train_grid")
    elif isinstance(p, TextSample):
        st.markdown(_("**Sampled from the model at step {step:,}** (a new sample every few hundred steps)").format(
            step=p.step))
        st.html(f"<pre style='font-size:19px; line-height:1.35; white-space:pre-wrap; "
                f"background:#f6f8fa; padding:12px; border-radius:8px'>"
                f"{html.escape(p.text)}</pre>")
    elif isinstance(p, Samples):
        render_samples(p, r.job_id)
    elif isinstance(p, Captions):
        st.html(preview_html(p.images, p.words, p.probs, p.references, p.correct, p.step,
                             p.language, columns=2, size=style.px(19)))
    elif isinstance(p, PreviewFailed):
        st.caption(_("No preview at step {step:,}: {why}").format(step=p.step, why=p.message))


def render_samples(p: Samples, job_id: str = "") -> None:
    """A generator's live preview: the grid drawn from the same latents at every preview, and
    beside it the diversity over the run and the classes the judge sees, so a collapse onto a
    few images shows as it happens; a VAE adds its reconstructions of fixed test images."""
    lang = language()
    rows = None
    if p.labels is not None:                     # conditional: one row per class
        rows = [_(p.classes[p.labels[i]]) for i in range(0, len(p.labels), p.columns)]
    left, right = st.columns([3, 2])
    with left:
        title = _("Samples at step {step}").format(step=f"{p.step:,}")
        fig = cache.figure(("samples", job_id, p.step, lang), lambda: gen_figs.sample_grid(
            p.images, p.columns, scale=gen_figs.scale_for(p.images.shape[-1]), title=title,
            row_labels=rows), live=True)
        style.chart(fig, key="train_samples", config={"displayModeBar": False})
        if rows:
            st.caption(_("Drawn from the same {n} latent vectors at every step, one row per class "
                         "(a column shares its z): the pictures change only because the "
                         "generator learns.").format(n=p.columns))
        else:
            st.caption(_("Drawn from the same {n} latent vectors at every step: the pictures "
                         "change only because the generator learns.").format(n=len(p.images)))
    with right:
        fig = cache.figure(("diversity", job_id, p.step, lang), lambda: gen_figs.diversity_figure(
            p.history or ((p.step, p.diversity, p.distinct),), p.predicted,
            [_(c) for c in p.classes], judged=p.predicted is not None), live=True)
        style.chart(fig, key="train_diversity", config={"displayModeBar": False})
        st.caption(diversity_words(p))
    if p.originals is not None and p.reconstructions is not None:
        both = np.concatenate([p.originals, p.reconstructions])
        fig = cache.figure(("reconstructions", job_id, p.step, lang), lambda: gen_figs.sample_grid(
            both, len(p.originals), scale=gen_figs.scale_for(both.shape[-1]),
            row_labels=[_("test image"), _("reconstructed")],
            title=_("Reconstructions at step {step} (through the encoder's mean)").format(
                step=f"{p.step:,}")), live=True)
        style.chart(fig, key="train_reconstructions", config={"displayModeBar": False})


def diversity_words(p: Samples) -> str:
    """The diversity figure in words, with the sign of a collapse when there is one."""
    text = _("Diversity {d:.2f}: the samples differ from each other {pct:.0%} as much as real "
             "test images do.").format(d=p.diversity, pct=p.diversity)
    if p.distinct is not None:
        text += " " + _("The judge (karp's trained classifier) sees {k} of the {n} classes among "
                        "them.").format(k=p.distinct, n=len(p.classes))
    best = max((h[1] for h in p.history), default=p.diversity)
    if p.diversity < 0.5 and best >= 0.6 and p.diversity < 0.7 * best:
        text += " " + _("It has fallen from {best:.2f}: the generator is drawing fewer kinds of "
                        "image, the sign of mode collapse.").format(best=best)
    elif p.diversity < 0.5:
        text += " " + _("Far below 1: early in training every sample is much the same blur; if "
                        "it stays low, the generator draws only a few kinds of image (mode "
                        "collapse).")
    return text
