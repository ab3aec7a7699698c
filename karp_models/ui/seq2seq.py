"""The seq2seq page's pieces: this session's live run, and the training loop that redraws its
curves and alignment (built by ui.figures.seq2seq) into the page's placeholders.

Training runs in the page's own script thread, through the one Trainer on the DateTranslation
task, in step budgets, with the app's torch threads (1 on a 2-core machine): see
pages/seq2seq.py for why.
"""
from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import streamlit as st

from karp_models.data import dates
from karp_models.i18n import _
from karp_models.introspect import text as tx
from karp_models.train import previews
from karp_models.train.tasks.seq2seq import (DEFAULT_EXAMPLE, LIVE, Translation, extend, live_trainer,
                                              translate)
from karp_models.train.trainer import Record, TrainConfig, Trainer, TrainerBusy
from karp_models.ui import style
from karp_models.ui.figures.seq2seq import alignment_figure, curves_figure
from karp_models.ui.text_views import show_reading

KEY = "seq2seq_run"


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
    step_s: float | None = None       # wall-clock seconds a step took in the last press (redraws too)

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
    params = sum(p.numel() for p in run.model.parameters())
    line = _("Step **{step:,}** · {s:.0f} s of training · {params:,} parameters").format(
        step=run.step, s=run.trainer.elapsed, params=params)
    if v:
        line += " · " + _("held-out dates exactly right: **{acc:.1%}** (step {step})").format(
            acc=v.val_accuracy, step=v.step)
    return line


def translation_html(tr: Translation) -> str:
    return (f"<div style='font-size:30px; font-family:monospace'>{html.escape(tr.source)} "
            f"&nbsp;→&nbsp; <b>{html.escape(tr.output) or '∅'}</b></div>")


def read_date(text: str, where=st) -> str:
    """What the date model reads of a typed date: introspect.text.read over its source characters (NFKC, so
    full-width digits and spaces count; lower case, as its letters are; unknown characters listed on the
    page, never read as <unk>), then dates.normalise (single spaces, at most MAX_SRC characters)."""
    r = tx.read(dates.SRC_CHARS, text)
    show_reading(r, where)
    return dates.normalise(r.text)


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
        st.markdown(_("**Learning:** training loss and held-out dates translated exactly"))
        if run.records:
            recs = [r for r in run.records if not r.final]
            val = [(r.step, r.val_accuracy) for r in run.records if r.val_accuracy is not None]
            fig = curves_figure([r.step for r in recs], [r.train_loss for r in recs], val)
            style.chart(fig, width="stretch", config={"displayModeBar": False},
                        key=f"seq2seq_curves_{tag}")
        else:
            st.info(_("No training yet: the curves appear here when you press **Train**."))
    with align.container():
        st.markdown(_("**Alignment at step {step:,}:** {source} → `{output}`").format(
            step=tr.step, source=html.escape(run.example), output=tr.output or "∅"))
        style.chart(alignment_figure(tr, height=460),
                    width="stretch", config={"displayModeBar": False}, key=f"seq2seq_align_{tag}")


def train_live(run: LiveRun, steps: int, status, progress, curves, align, redraw_every: int = 20) -> None:
    """Train `steps` more steps in this script run through the Trainer, redrawing every
    `redraw_every` steps (with a fresh preview of the example).

    A rerun (any click) stops the loop at the next redraw; the run keeps what it learned. A
    second press while the first loop is still stopping (Streamlit stops the old script run at
    its next element, not at once) waits for it: the Trainer runs one loop at a time."""
    try:
        _train(run, steps, status, progress, curves, align, redraw_every)
    except TrainerBusy:
        progress.warning(_("The previous training is still stopping: press Train again in a moment."))


def _train(run: LiveRun, steps: int, status, progress, curves, align, redraw_every: int) -> None:
    start, t0 = run.step, time.perf_counter()
    extend(run.trainer, steps)
    task = run.trainer.task
    for rec in run.trainer.run(log_every=10):
        run.records.append(rec)
        done = rec.step - start
        progress.progress(min(1.0, done / max(1, steps)),
                          text=_("Training: step {done:,} of {steps:,} ({s:.0f} s)").format(
                              done=done, steps=steps, s=run.trainer.elapsed))
        if rec.final or rec.step % redraw_every == 0:
            shot = previews.make(task, run.model, run.trainer.device, rec.step)
            if isinstance(shot, Translation):
                run.last = shot
            draw(run, status, curves, align, tag=f"{rec.step}{'f' if rec.final else ''}")
    progress.progress(1.0, text=_("Done: {steps:,} steps in {s:.0f} s of training").format(
        steps=run.step, s=run.trainer.elapsed))
    run.step_s = (time.perf_counter() - t0) / max(1, run.step - start)


def train_label(run: LiveRun) -> str:
    """The Train button: how many steps, and how long they take here once one press measured it."""
    if run.step == 0:
        return _("Train {n} steps").format(n=run.budget)
    if run.step_s is None:
        return _("Train {n} more steps").format(n=run.budget)
    return _("Train {n} more steps (about {s} s)").format(n=run.budget, s=max(1, round(run.step_s * run.budget)))


def examples_table(run: LiveRun, pairs: Sequence[tuple[str, str]]) -> list[dict]:
    rows = []
    for text, iso in pairs:
        out = translate(run.model, text).output
        rows.append({_("written as"): text, _("model says"): out, _("truth"): iso,
                     _("result"): _("right") if out == iso else _("wrong")})
    return rows
