"""The training time-lapse on any view: where a run's whole-model snapshots come from (a saved run's
file, or a run of this browser still training, train/timelapse.py), a slider over their steps that
says the step and the loss there, and one view computed at a snapshot (introspect.timelapse.
at_snapshots), cached per snapshot so moving the slider back costs nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st
from torch import nn

from karp_models.i18n import _
from karp_models.ui import style
from karp_models.ui.cache import SharedLRU

T = TypeVar("T")
FRAMES = SharedLRU(96)     # one view at one snapshot: small arrays (attention, a layer's cells)
REFRESH_S = 5.0            # a run still training: the time-lapse looks for new snapshots this often


@dataclass(frozen=True)
class Lapse:
    """One run's time-lapse. key: its cache key (a file and its mtime, or a job); snapshots:
    [(step, state_dict)], oldest first; losses: {step: (training loss, validation loss or None)}
    of the records logged; model: a model of the same architecture they load into; live: a run
    of this browser still training."""

    key: tuple
    label: str
    snapshots: list
    losses: dict[int, tuple[float, float | None]]
    model: nn.Module
    live: bool = False

    @property
    def steps(self) -> list[int]:
        return [s for s, _w in self.snapshots]

    def loss_at(self, step: int) -> tuple[float, float | None] | None:
        """The last logged losses at or before `step` (None before the first record)."""
        before = [s for s in self.losses if s <= step]
        return self.losses[max(before)] if before else None


def _losses(records: Any) -> dict[int, tuple[float, float | None]]:
    out = {}
    for r in records or ():
        get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k, None)
        if get("step") is not None and get("train_loss") is not None:
            out[int(get("step"))] = (float(get("train_loss")), None if get("val_loss") is None else float(get("val_loss")))
    return out


def saved_lapse(path: str, mtime: float, model: nn.Module, label: str) -> Lapse | None:
    """A saved run's time-lapse (None without one); raises CheckpointError for a damaged file."""
    from karp_models.train import timelapse as tl
    from karp_models.train.checkpoints import read_trainer_summary
    from karp_models.ui import cache

    snaps = cache.result(("timelapse-load", path, mtime), lambda: tl.load(path))
    if not snaps:
        return None
    try:
        history = read_trainer_summary(path).get("history")
    except Exception:  # noqa: BLE001 - no trainer state: the steps without their losses
        history = None
    return Lapse(("saved", path, mtime), label, snaps, _losses(history), model)


def live_lapses(models: tuple[str, ...], dataset: str) -> list[Lapse]:
    """This browser's runs of one of `models` (registry names) on `dataset` with at least one
    snapshot: the ones so far of a run still training (its status, train/jobstatus.py)."""
    from karp_models.models import from_config
    from karp_models.ui.training import manager, session_id

    out = []
    for j in manager().jobs(session_id()):
        if j.spec.model not in models or j.spec.dataset != dataset or not j.timelapse or not j.model_config:
            continue
        twin = FRAMES.get_or_build(("twin", j.job_id), lambda j=j: from_config(j.spec.model, j.model_config).eval())
        label = _("this session: {run}").format(run=j.label)   # no state in it: the choice outlives "running"
        out.append(Lapse(("live", j.job_id), label, list(j.timelapse), _losses(j.records), twin, j.active))
    return out


def pick(key: str, lapses: list[Lapse]) -> Lapse:
    """A choice of run when there is more than one: at first the run still training, if any,
    else the first (the saved run); the choice stays on its run when that run finishes."""
    if len(lapses) == 1:
        return lapses[0]
    labels = [lp.label for lp in lapses]
    first = next((i for i, lp in enumerate(lapses) if lp.live), 0)
    return lapses[labels.index(st.selectbox(_("Run to replay"), labels, index=first, key=f"{key}_run"))]


def step_slider(key: str, lapse: Lapse) -> int:
    """A slider over the snapshots' steps (the last first) and a line saying the step, how many
    there are and the loss there; the index of the chosen snapshot."""
    steps = lapse.steps
    i = (st.select_slider(_("Training step"), options=list(range(len(steps))), value=len(steps) - 1,
                          format_func=lambda k: f"{steps[k]:,}", key=f"{key}_step_{lapse.key[-1]}_{len(steps)}")
         if len(steps) > 1 else 0)
    step = steps[i]
    loss = lapse.loss_at(step)
    if step == 0 and (loss is None or min(lapse.losses, default=1) > 0):
        said = _("before the first training step: the weights it started from (random, unless it was fine-tuned)")
    elif loss is None:
        said = _("no loss logged yet")
    elif loss[1] is None:
        said = _("training loss {loss:.3f}").format(loss=loss[0])
    else:
        said = _("training loss {loss:.3f}, validation loss {val:.3f}").format(loss=loss[0], val=loss[1])
    st.markdown(_("**Step {step:,}** (snapshot {i} of {n}): {said}.").format(step=step, i=i + 1, n=len(steps),
                                                                          said=said))
    if lapse.live:
        st.caption(_("This run is still training: new snapshots appear here as it reaches them."))
    return i


def frame(lapse: Lapse, i: int, what: Hashable, look: Callable[[nn.Module], T]) -> T:
    """look(model at snapshot i), computed once per run, snapshot and `what` (the view and its
    input) for every session (introspect.timelapse.at_snapshots)."""
    from karp_models.introspect.timelapse import at_snapshots

    return FRAMES.get_or_build((*lapse.key, lapse.snapshots[i][0], what),
                               lambda: at_snapshots(lapse.model, [lapse.snapshots[i]], look)[0][1])


def none_here(what: str) -> None:
    """Why there is nothing to replay, and how to get a time-lapse."""
    st.info(_("**No time-lapse for this model.** {what} Train a model of this kind on the **Train** page: "
              "while it trains, its snapshots so far can be replayed here; saved, it keeps up to 12 "
              "copies of the whole model at evenly spaced steps (fewer for a big model). Shipped "
              "weights and runs saved before karp kept them have none.").format(what=what))


def section(key: str, sources: Callable[[], list[Lapse]], body: Callable[[Lapse, int], None],
            what: str) -> None:
    """The time-lapse of one view: a choice of run among sources() (read again at each refresh),
    the step slider and body(lapse, index), in a fragment that looks for new snapshots every few
    seconds while one of them trains."""
    try:
        first = sources()
    except Exception as e:  # noqa: BLE001 - a damaged run file: say so, the page goes on
        st.error(_("This run's time-lapse cannot be read: {error}").format(error=e))
        return
    if not first:
        none_here(what)
        return

    @st.fragment(run_every=REFRESH_S if any(lp.live for lp in first) else None)
    def show() -> None:
        lapses = sources() if any(lp.live for lp in first) else first
        if not lapses:
            return
        lapse = pick(key, lapses)
        i = step_slider(key, lapse)
        try:
            body(lapse, i)
        except (RuntimeError, ValueError) as e:
            st.error(_("The time-lapse cannot be replayed on this model: {error}").format(error=e))

    show()


# ---------------------------------------------------------------------------- the text pages

REPLAY_CHARS = 500        # an RNN replays the first characters of the text at each snapshot


def text_sources(ck: Any, choice: Any) -> Callable[[], list[Lapse]]:
    """The chosen model's saved time-lapse (when it is a saved run), then this browser's runs of
    the same model on the same data (still training or not yet saved)."""
    def sources() -> list[Lapse]:
        out = []
        if choice.origin == "run":
            lp = saved_lapse(choice.path, choice.mtime, ck.model, _("saved run: {run}").format(run=choice.label))
            out += [lp] if lp is not None else []
        return out + live_lapses((choice.model_name,), choice.dataset)
    return sources


def attention_section(ck: Any, choice: Any, window: tuple[int, ...], chars: str) -> None:
    """The GPT attention page's time-lapse: every layer and head on the window at one snapshot, and
    how focused each head of a layer is at every snapshot."""
    from karp_models.introspect import text as tx
    from karp_models.ui.figures.predict import timelapse_figure
    from karp_models.ui.figures.text import model_view

    def body(lapse: Lapse, i: int) -> None:
        att = frame(lapse, i, ("attention", window), lambda m: tx.attention(m, window))   # (L, H, T, T)
        c_view, c_focus = st.columns([3, 2])
        with c_view:
            st.markdown(_("**All layers and heads at step {step:,}**, on this window.").format(step=lapse.steps[i]))
            style.chart(model_view(att, chars), width="stretch", key="text_attention_tl_view")
        with c_focus:
            L, H = att.shape[:2]
            layer = st.selectbox(_("Layer"), range(L), key="text_attention_tl_layer") if L > 1 else 0
            every = [frame(lapse, j, ("attention", window), lambda m: tx.attention(m, window))
                     for j in range(len(lapse.steps))]
            focus = {_("head {n}").format(n=h): [float(a[layer, h].max(-1).mean()) for a in every] for h in range(H)}
            style.chart(timelapse_figure(lapse.steps, focus, lapse.steps[i]), key="text_attention_tl_focus")
            st.caption(_("How focused each head of layer {layer} is at every snapshot: the largest weight in a "
                         "row, averaged over the window (1: each character reads one other character; low: "
                         "it spreads its attention evenly). A run trained from scratch starts from random weights "
                         "whose heads spread evenly; the rise shows a head learning where to look.").format(layer=layer))

    section("text_attention_tl", text_sources(ck, choice), body,
            _("Shipped weights come finished, trained with the command line."))


def neurons_section(ck: Any, choice: Any, ids: list[int], text: str, state: str, layer: int, cell: int,
                    signal: Any, signal_name: str) -> None:
    """The RNN neurons page's time-lapse: the text coloured by one cell at one snapshot, its trace
    against the signal, and at every snapshot how closely that cell (and the best cell then) follows
    the signal. signal: (len(text),) values; signal_name: its name in words."""
    import numpy as np

    from karp_models.introspect import neurons
    from karp_models.ui.figures.predict import timelapse_figure
    from karp_models.ui.figures.text import color_legend_html, neuron_text_html, trace_figure

    n = min(len(ids), REPLAY_CHARS)
    ids_t, text_t, sig = tuple(ids[:n]), text[:n], np.asarray(signal[:n], np.float64)

    def cells(lapse: Lapse, j: int) -> np.ndarray:                                    # (T, n_hidden)
        return frame(lapse, j, ("cells", ids_t, state, layer),
                     lambda m: neurons.traces(m, ids_t)[state][:, layer, :].astype(np.float32))

    def corr(v: np.ndarray) -> np.ndarray:                                            # (n_hidden,)
        v = v - v.mean(0)
        s = sig - sig.mean()
        den = np.sqrt((v ** 2).sum(0) * (s ** 2).sum())
        return np.where(den > 0, (v * s[:, None]).sum(0) / np.where(den > 0, den, 1), np.nan)

    def body(lapse: Lapse, i: int) -> None:
        with st.spinner(_("Running the network at {n} snapshots…").format(n=len(lapse.steps))):
            every = [cells(lapse, j) for j in range(len(lapse.steps))]
        if cell >= every[i].shape[1]:
            st.warning(_("This run's layer has {n} cells: choose a cell below {n}.").format(n=every[i].shape[1]))
            return
        values = every[i][:, cell]
        c_text, c_chart = st.columns([3, 2])
        with c_text:
            st.caption(_("The first {n} characters, coloured by cell {cell} at step {step:,}.").format(
                n=n, cell=cell, step=lapse.steps[i]))
            scale = 1.0 if state == "h" else float(max(np.abs(np.stack(every)[:, :, cell]).max(), 1e-6))
            st.html(color_legend_html(scale))
            st.html(neuron_text_html(text_t, values, scale))
        with c_chart:
            cs = [corr(v) for v in every]
            series = {_("cell {cell} follows '{signal}'").format(cell=cell, signal=signal_name): [float(c[cell]) for c in cs],
                      _("the best cell at that step"): [float(np.nanmax(np.abs(c))) if np.isfinite(c).any() else np.nan
                                                        for c in cs]}
            style.chart(timelapse_figure(lapse.steps, series, lapse.steps[i]), key="rnn_neurons_tl_corr")
            st.caption(_("Pearson correlation with '{signal}' over these characters at every snapshot. A cell "
                         "that tracks something a person can name is not there at the start: it forms while "
                         "the loss falls.").format(signal=signal_name))
        style.chart(trace_figure(values, sig, text_t, _("cell {n}").format(n=cell), signal_name), width="stretch",
                    key="rnn_neurons_tl_trace")

    section("rnn_neurons_tl", text_sources(ck, choice), body,
            _("Shipped weights come finished, trained with the command line."))


# ---------------------------------------------------------------------------- the projector

PROJECTOR_POINTS = 2000   # test images replayed at each snapshot (the first ones: the same points)


def image_sources(path: str, mtime: float, origin: str, model: nn.Module, label: str, dataset: str
                  ) -> Callable[[], list[Lapse]]:
    """A saved image run's time-lapse, then this browser's image runs on the same data."""
    from karp_models.models import REGISTRY

    image_models = tuple(n for n, s in REGISTRY.items() if s.task in ("image", "finetune"))

    def sources() -> list[Lapse]:
        out = []
        if origin == "run":
            lp = saved_lapse(path, mtime, model, _("saved run: {run}").format(run=label))
            out += [lp] if lp is not None else []
        return [lp for lp in out + live_lapses(image_models, dataset) if len(lp.steps) >= 2]
    return sources


def projector_section(sources: Callable[[], list[Lapse]], test_x: Any, labels: Any, classes: tuple[str, ...],
                      colour_by: str) -> None:
    """The projector over a run's snapshots: the same test images placed by each snapshot's
    penultimate features (PCA, turned to match the last snapshot's so the picture stays upright),
    and how well the classes separate there (5-NN) beside the test accuracy, at every snapshot."""
    import numpy as np

    from karp_models.introspect import embeddings as emb
    from karp_models.ui.figures.evaluate import projector_figure
    from karp_models.ui.figures.predict import timelapse_figure

    n = min(PROJECTOR_POINTS, len(labels))
    x, y = test_x[:n], np.asarray(labels[:n])

    def look(m: nn.Module) -> tuple:
        feats, probs = emb.features_and_probs(m, x)
        coords, _ratio = emb.pca_2d(feats)
        return coords, probs, emb.knn_accuracy(feats, y)[0]

    def body(lapse: Lapse, i: int) -> None:
        with st.spinner(_("Running the network at {n} snapshots…").format(n=len(lapse.steps))):
            every = [frame(lapse, j, ("projector", n), look) for j in range(len(lapse.steps))]
        coords = emb.align_2d(every[i][0], every[-1][0])
        probs = every[i][1]
        left, right = st.columns([3, 2], gap="medium")
        with left:
            fig = projector_figure(coords, y, probs.argmax(1), probs, classes, colour_by)
            fig.update_layout(height=520)
            style.chart(fig, key="evaluate_tl_proj", width="stretch")
        with right:
            series_acc = [float((f[1].argmax(1) == y).mean()) for f in every]
            series_knn = [float(f[2]) for f in every]
            series = {_("test accuracy"): series_acc, _("class separation (5-NN)"): series_knn}
            style.chart(timelapse_figure(lapse.steps, series, lapse.steps[i]), key="evaluate_tl_curve")
            st.caption(_("The first {n:,} test images at every snapshot, placed by PCA of what the last layer "
                         "sees then, turned and scaled to match the last snapshot (the directions themselves "
                         "change as the network learns). At step {first:,} the features already put {knn:.0%} "
                         "of the images among their own class (5 nearest neighbours) while the model answers "
                         "{acc:.0%} right: even random filters keep much of the image; training teaches the last "
                         "layer to read them, and pulls the classes further apart.").format(
                             n=n, first=lapse.steps[0], knn=series_knn[0], acc=series_acc[0]))

    section("evaluate_tl", sources, body, _("Shipped weights come finished, trained with the command line."))
