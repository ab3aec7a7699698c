"""The seq2seq page's pieces: this session's live run, and the training loop that redraws its
curves and alignment (built by ui.figures.seq2seq) into the page's placeholders.

Training runs in the page's own script thread, in a step budget, with the app's torch threads
(1 on a 2-core machine): see pages/seq2seq.py for why.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import streamlit as st

from karp_models.seq2seq_train import LiveRun, Translation, translate
from karp_models.ui.figures.seq2seq import alignment_figure, curves_figure

KEY = "seq2seq_run"


def status_line(run: LiveRun) -> str:
    v = run.last_val
    acc = f" · held-out dates exactly right: **{v.val_exact:.1%}** (step {v.step})" if v else ""
    return (f"Step **{run.step:,}** · {run.elapsed_s:.0f} s of training · "
            f"{run.params:,} parameters{acc}")


def translation_html(tr: Translation) -> str:
    return (f"<div style='font-size:30px; font-family:monospace'>{html.escape(tr.source)} "
            f"&nbsp;→&nbsp; <b>{html.escape(tr.output) or '∅'}</b></div>")


def get_run() -> LiveRun:
    """This session's run, created (untrained) on first use."""
    if KEY not in st.session_state:
        st.session_state[KEY] = LiveRun()
    return st.session_state[KEY]


def reset_run() -> None:
    st.session_state.pop(KEY, None)


def draw(run: LiveRun, status, curves, align, tag: str = "page") -> None:
    """Fill the page's placeholders from the run's records (tag: unique per redraw in one script run)."""
    status.markdown(status_line(run))
    tr = run.last_snapshot
    step = next((r.step for r in reversed(run.records) if r.snapshot is tr), 0)
    with curves.container():
        st.markdown("**Learning:** training loss and held-out dates translated exactly")
        if run.records:
            recs = [r for r in run.records if not r.final]
            val = [(r.step, r.val_exact) for r in run.records if r.val_exact is not None]
            fig = curves_figure([r.step for r in recs], [r.train_loss for r in recs], val)
            st.plotly_chart(fig, width="stretch",
                            config={"displayModeBar": False}, key=f"seq2seq_curves_{tag}")
        else:
            st.info("No training yet: the curves appear here when you press **Train**.")
    with align.container():
        st.markdown(f"**Alignment at step {step:,}:** {html.escape(run.example)} → "
                    f"`{tr.output or '∅'}`")
        st.plotly_chart(alignment_figure(tr),
                        width="stretch", config={"displayModeBar": False}, key=f"seq2seq_align_{tag}")


def train_live(run: LiveRun, steps: int, status, progress, curves, align, redraw_every: int = 20) -> None:
    """Train `steps` steps in this script run, redrawing every `redraw_every` steps.

    A rerun (any click) stops the loop at the next redraw; the run keeps what it learned."""
    start = run.step
    for rec in run.train(steps):
        done = rec.step - start
        progress.progress(min(1.0, done / max(1, steps)),
                          text=f"Training: step {done:,} of {steps:,} ({run.elapsed_s:.0f} s)")
        if rec.final or (rec.snapshot is not None and done % redraw_every == 0):
            draw(run, status, curves, align, tag=f"{rec.step}{'f' if rec.final else ''}")
    progress.progress(1.0, text=f"Done: {run.step:,} steps in {run.elapsed_s:.0f} s of training")


def examples_table(run: LiveRun, pairs: Sequence[tuple[str, str]]) -> list[dict]:
    rows = []
    for text, iso in pairs:
        out = translate(run.model, text).output
        rows.append({"written as": text, "model says": out, "truth": iso,
                     "": "✅" if out == iso else "❌"})
    return rows
