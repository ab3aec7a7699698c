"""The seq2seq page's pieces: the alignment heatmap (source characters x output characters), the
loss and held-out accuracy curves, and the live training loop that redraws them into placeholders.

Training runs in the page's own script thread, through the one Trainer on the DateTranslation
task, in step budgets, with the app's torch threads (1 on a 2-core machine): see
pages/seq2seq.py for why. Large fonts (projector).
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from karp_models.train import previews
from karp_models.train.tasks.seq2seq import (DEFAULT_EXAMPLE, LIVE, Translation, extend, live_trainer,
                                              translate)
from karp_models.train.trainer import Record, TrainConfig, Trainer

FONT = dict(size=17)
KEY = "seq2seq_run"


def _show(ch: str) -> str:
    """A character as an axis label: spaces visible, and no '<' (plotly reads labels as HTML)."""
    return {" ": "␣", "</s>": "end", "<": "&lt;", ">": "&gt;", "&": "&amp;"}.get(ch, ch)


def alignment_figure(tr: Translation, height: int = 400) -> go.Figure:
    """Rows: output characters (first at the top, </s> last); columns: source characters.
    Cell (i, j) is alpha_ij, how much writing output i looked at source character j."""
    A = tr.alignment                                                   # (T_out, S)
    T, S = A.shape
    ys = [_show(c) for c in tr.out_chars]
    fig = go.Figure(go.Heatmap(
        z=A, x=list(range(S)), y=list(range(T)), zmin=0, zmax=1, colorscale="Blues",
        colorbar=dict(title=dict(text="α"), thickness=14),
        customdata=np.array([[f"{_show(tr.source[j])} (#{j + 1})" for j in range(S)]
                             for _ in range(T)]),
        hovertemplate="writing %{y}<br>looks at %{customdata}<br>α = %{z:.2f}<extra></extra>"))
    mono = dict(size=16, family="Courier New, monospace")
    x_font = {**mono, "size": max(10, min(16, 16 * 26 // max(S, 1)))}  # long inputs: smaller, not overlapping
    fig.update_xaxes(tickvals=list(range(S)), ticktext=[_show(c) for c in tr.source], tickangle=0,
                     tickfont=x_font, title_text="input (what it reads)", automargin=True)
    fig.update_yaxes(tickvals=list(range(T)), ticktext=ys, autorange="reversed", tickfont=mono,
                     title_text="output (what it writes)", automargin=True)
    fig.update_layout(font=FONT, height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def curves_figure(records: Sequence[Record]) -> go.Figure:
    """Training loss (log scale, left) and held-out exact match (%, right) against the step."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    recs = [r for r in records if not r.final]
    fig.add_scatter(x=[r.step for r in recs], y=[r.train_loss for r in recs], mode="lines",
                    line=dict(width=3, color="#1f77b4"), name="training loss")
    val = [r for r in records if r.val_accuracy is not None]
    fig.add_scatter(x=[r.step for r in val], y=[100 * r.val_accuracy for r in val],
                    mode="lines+markers", marker=dict(size=9), line=dict(width=3, color="#16a34a"),
                    name="held-out dates exactly right (%)", secondary_y=True)
    fig.update_yaxes(type="log", dtick=1, title_text="cross-entropy (nats, log)", secondary_y=False)
    fig.update_yaxes(range=[0, 101], tickvals=[0, 25, 50, 75, 95, 100], title_text="exact (%)",
                     secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text="step", rangemode="tozero")
    fig.update_layout(font=FONT, height=400, margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), uirevision="s2s")
    return fig


def translation_html(tr: Translation) -> str:
    return (f"<div style='font-size:30px; font-family:monospace'>{html.escape(tr.source)} "
            f"&nbsp;→&nbsp; <b>{html.escape(tr.output) or '∅'}</b></div>")


@dataclass
class LiveRun:
    """This session's date translator: its Trainer, the example's translation before any
    training, and the latest preview (the example at the last snapshot)."""

    trainer: Trainer
    first: Translation
    last: Translation
    budget: int = LIVE.steps          # steps one press of Train adds
    example: str = DEFAULT_EXAMPLE
    records: list[Record] = field(default_factory=list)

    @property
    def model(self):
        return self.trainer.model

    @property
    def step(self) -> int:
        return self.trainer.step


def new_run(cfg: TrainConfig = LIVE, **kw) -> LiveRun:
    """An untrained run whose Train button adds cfg.steps steps (kw: live_trainer's)."""
    trainer = live_trainer(cfg, **kw)
    first = translate(trainer.model, DEFAULT_EXAMPLE)
    return LiveRun(trainer=trainer, first=first, last=first, budget=int(cfg.steps))


def status_line(run: LiveRun) -> str:
    v = next((r for r in reversed(run.records) if r.val_accuracy is not None), None)
    acc = f" · held-out dates exactly right: **{v.val_accuracy:.1%}** (step {v.step})" if v else ""
    params = sum(p.numel() for p in run.model.parameters())
    return (f"Step **{run.step:,}** · {run.trainer.elapsed:.0f} s of training · "
            f"{params:,} parameters{acc}")


def get_run() -> LiveRun:
    """This session's run, created (untrained) on first use."""
    if KEY not in st.session_state:
        st.session_state[KEY] = new_run()
    return st.session_state[KEY]


def reset_run() -> None:
    st.session_state.pop(KEY, None)


def draw(run: LiveRun, status, curves, align, tag: str = "page") -> None:
    """Fill the page's placeholders from the run's records (tag: unique per redraw in one script run)."""
    status.markdown(status_line(run))
    tr = run.last
    with curves.container():
        st.markdown("**Learning:** training loss and held-out dates translated exactly")
        if run.records:
            st.plotly_chart(curves_figure(run.records), width="stretch",
                            config={"displayModeBar": False}, key=f"seq2seq_curves_{tag}")
        else:
            st.info("No training yet: the curves appear here when you press **Train**.")
    with align.container():
        st.markdown(f"**Alignment at step {tr.step:,}:** {html.escape(run.example)} → "
                    f"`{tr.output or '∅'}`")
        st.plotly_chart(alignment_figure(tr),
                        width="stretch", config={"displayModeBar": False}, key=f"seq2seq_align_{tag}")


def train_live(run: LiveRun, steps: int, status, progress, curves, align, redraw_every: int = 20) -> None:
    """Train `steps` more steps in this script run through the Trainer, redrawing every
    `redraw_every` steps (with a fresh preview of the example).

    A rerun (any click) stops the loop at the next redraw; the run keeps what it learned."""
    start = run.step
    extend(run.trainer, steps)
    task = run.trainer.task
    for rec in run.trainer.run(log_every=10):
        run.records.append(rec)
        done = rec.step - start
        progress.progress(min(1.0, done / max(1, steps)),
                          text=f"Training: step {done:,} of {steps:,} ({run.trainer.elapsed:.0f} s)")
        if rec.final or rec.step % redraw_every == 0:
            shot = previews.make(task, run.model, run.trainer.device, rec.step)
            if isinstance(shot, Translation):
                run.last = shot
            draw(run, status, curves, align, tag=f"{rec.step}{'f' if rec.final else ''}")
    progress.progress(1.0, text=f"Done: {run.step:,} steps in {run.trainer.elapsed:.0f} s of training")


def examples_table(run: LiveRun, pairs: Sequence[tuple[str, str]]) -> list[dict]:
    rows = []
    for text, iso in pairs:
        out = translate(run.model, text).output
        rows.append({"written as": text, "model says": out, "truth": iso,
                     "": "✅" if out == iso else "❌"})
    return rows
