"""The 'Your own classes' page, part 2: fine-tune a pretrained backbone on the person's classes
through the job queue. The backbone (karp's trained CNNs, offline; torchvision's ImageNet
networks when their weights are here, else the in-app download), how the pictures look in its
input format, the mode with a diagram of which layers are frozen, then the three modes as three
jobs with their validation accuracy on one chart, and saving a run so Predict, Explain and
Evaluate open it.

The dataset is built by data.own in the backbone's format (once per change of the classes or
the backbone, kept in the session); the runs are train.finetune.mode_spec's RunSpecs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from karp_models.data import own
from karp_models.i18n import N_, _, join
from karp_models.train import finetune as ft
from karp_models.train.jobs import JobManager, JobStatus, QueueFull
from karp_models.ui import style
from karp_models.ui import training as tr
from karp_models.ui.figures import finetune as figs
from karp_models.ui.images import display
from karp_models.ui.own import Draft
from karp_models.ui.predict import download_weights
from karp_models.ui.train_runs import remember_saved

BUILT = "own_built"            # session: (cache key, own.Built) of the dataset last built
GROUP = "own_group"            # session: the job ids of the last Start, in MODES order
MODES_ALL = ft.MODES           # the three ways, in the order the chart lists them
OPEN_IN = (("pages/predict.py", N_("Predict"), ":material/image_search:", "predict_model"),   # a saved run
           ("pages/explain.py", N_("Explain"), ":material/lightbulb:", "explain_model"),
           ("pages/evaluate.py", N_("Evaluate"), ":material/fact_check:", "evaluate_model"))
MODE_WORDS = {"head": N_("Head only"), "whole": N_("Whole network"), "scratch": N_("From scratch")}
MODE_HELP = {
    "head": N_("The pretrained layers are frozen; only the new last layer learns your classes. "
              "Fast, and works with very few pictures when the backbone's features fit them."),
    "whole": N_("Every layer learns, the pretrained ones at a tenth of the learning rate, so "
               "their features are adjusted, not forgotten."),
    "scratch": N_("The same network from random weights: what the pretrained features are worth "
                 "is the gap between this curve and the other two."),
}


def mode_words(mode: str) -> str:
    return _(MODE_WORDS[mode])


# ---------------------------------------------------------------------------- the backbone


@st.cache_data(ttl=10, show_spinner=False)
def _backbones() -> list[ft.Backbone]:
    return ft.backbones()


def input_words(bb: ft.Backbone) -> str:
    """What the backbone takes, and how a picture becomes it."""
    f = bb.input
    if f.transform is not None:
        t = f.transform
        return _("{size}×{size} colour pictures: torchvision's recipe for these weights (shorter "
                 "side to {resize}, centre crop {size}).").format(size=f.size, resize=int(t.resize_size[0]))
    recipe = {"mnist": _("MNIST's recipe: grey, the object bright on black, fitted in 20×20 and "
                         "centred by its mass"),
              "fashion": _("Fashion-MNIST's recipe: grey, the object bright on black, cropped to it "
                           "and fitted in the square")}.get(f.style, f.style)
    return _("{size}×{size} grey pictures, made by {recipe}.").format(size=f.size, recipe=recipe)


def backbone_picker() -> ft.Backbone | None:
    """A selectbox over every backbone; its facts; for torchvision's without weights here, the
    download with progress (or, offline, what to do). None when nothing can be trained yet."""
    options = _backbones()
    keys = [b.key for b in options]
    by_key = {b.key: b for b in options}
    default = next((i for i, b in enumerate(options) if Path(b.key).stem == "fast-fashion-mnist"), 0)

    def label(k: str) -> str:
        b = by_key[k]
        return b.title + ("" if b.available else " " + _("(weights not here yet)"))

    key = st.selectbox(_("Backbone: the pretrained network to start from"), keys, index=default,
                       format_func=label, key="own_backbone")
    bb = by_key[key]
    facts = [_("trained on {data}").format(data=bb.trained_on)] + ([bb.metrics] if bb.metrics else [])
    facts.append(_("{mb} MB").format(mb=f"{bb.size_mb:.1f}"))
    st.caption(_("{facts}. {input}").format(facts=join(facts), input=input_words(bb)))
    if not bb.available:
        if download_weights(bb.fields["arch"], "own_download",
                            _("{model} needs its ImageNet weights ({mb:.0f} MB), which are not on this "
                              "computer yet. karp's own backbones, first in the list, work offline.")):
            _backbones.clear()
            st.rerun()
        return None
    return bb


# ---------------------------------------------------------------------------- the dataset in its format


def built(d: Draft, bb: ft.Backbone) -> own.Built | None:
    """The person's classes as a dataset in the backbone's input format (built once per change,
    kept in the session), or None after saying on the page what is wrong."""
    key = (d.version, bb.key, d.name, d.val_fraction, d.seed)
    kept = st.session_state.get(BUILT)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        with st.spinner(_("Reading your images the way {backbone} reads pictures…").format(backbone=bb.title)):
            b = own.build(d.images(), bb.input, name=d.name, val_fraction=d.val_fraction, seed=d.seed,
                          source=_("your own classes"))
    except own.OwnDataError as e:
        st.warning(str(e), icon=":material/warning:")
        return None
    st.session_state[BUILT] = (key, b)
    return b


def input_preview(b: own.Built, per_class: int = 4) -> None:
    """The first training images of each class as the network will see them, and the files the
    backbone's recipe refused."""
    data = b.data
    cols = st.columns(min(len(data.classes), 5))
    y = data.train_y.numpy()
    for i, name in enumerate(data.classes):
        idx = np.flatnonzero(y == i)[:per_class]
        with cols[i % len(cols)]:
            st.markdown(f"**{name}**")
            st.image([display(data.train_x[j], side=style.px(64)) for j in idx])
    for r in b.rejected:
        st.error(f"{r.class_name} / {r.name}: {r.reason}", icon=":material/block:")


# ---------------------------------------------------------------------------- the mode and its frozen layers


def mode_picker() -> str:
    mode = st.radio(_("How to train"), ft.MODES, format_func=mode_words, key="own_mode", horizontal=True)
    st.caption(_(MODE_HELP[mode]))
    return mode


@st.cache_data(max_entries=32, show_spinner=False)
def _blocks(_bb: ft.Backbone, key: str, n_classes: int, mode: str) -> list:
    return ft.layers_of(_bb, n_classes, mode)


def frozen_layers(bb: ft.Backbone, n_classes: int, mode: str) -> None:
    """The network's blocks as a diagram marked frozen / trained, with the parameter counts,
    and the same as a table."""
    blocks = _blocks(bb, bb.key, n_classes, mode)
    total = sum(b.params for b in blocks)
    trained = sum(b.trainable for b in blocks)
    st.markdown(_("**{trained:,} of {total:,} parameters learn** in this mode ({share:.2%}); grey "
                  "blocks are frozen.").format(trained=trained, total=total, share=trained / max(total, 1)))
    style.chart(figs.blocks_figure(blocks), key="own_blocks")
    with st.expander(_("The same as a table")):
        st.dataframe(pd.DataFrame([{
            _("block"): b.name, _("layers"): join(f"{k} ×{n}" if n > 1 else k for k, n in b.kinds),
            _("parameters"): b.params, _("state"): figs.block_state(b)[1]} for b in blocks]),
            hide_index=True, width="stretch")


# ---------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class RunChoice:
    """What the person chose for the runs: steps per mode and the training seed."""

    steps: int
    seed: int


def budget(bb: ft.Backbone) -> RunChoice:
    b = ft.BUDGETS[bb.source]
    c1, c2 = st.columns(2)
    steps = c1.number_input(_("Training steps per mode"), 5, 5000, b.steps, step=5, key=f"own_steps_{bb.source}",
                            help=_("Each step learns from one batch of {n} of your training images.").format(
                                n=b.batch_size))
    seed = c2.number_input(_("Training seed"), 0, 9999, 0, key="own_train_seed",
                           help=_("The new layer's random start and the order of the images."))
    if bb.source == "torchvision":
        st.caption(_("An ImageNet network reads 224×224 pictures: on a CPU each step takes seconds, "
                     "and the head alone is by far the fastest of the three ways."))
    return RunChoice(int(steps), int(seed))


def start(mgr: JobManager, sid: str, bb: ft.Backbone, data, modes: tuple[str, ...], b: RunChoice) -> None:
    """Queue one job per mode; the page's chart follows them."""
    ids = []
    try:
        for m in modes:
            spec = ft.mode_spec(bb, data, m, steps=b.steps, seed=b.seed, label=mode_words(m))
            ids.append(mgr.submit(sid, spec))
    except (QueueFull, ValueError) as e:
        st.warning(_("Not started: {why}.").format(why=e))
    if ids:
        st.session_state[GROUP] = ids


def _curve(r: JobStatus) -> figs.ModeCurve:
    val = [q for q in r.records if q.val_accuracy is not None]
    return figs.ModeCurve(r.spec.preset or "head", r.label, [q.step for q in val],
                          [q.val_accuracy for q in val])


def _save(mgr: JobManager, r: JobStatus) -> None:
    """A Save popover: the run's name (suggested from the data, backbone and mode) and the button."""
    key = f"own_save_name_{r.job_id}"
    o = r.spec.overrides                                          # the checkpoint's name, or the arch
    bb = o.get("arch", "") if o.get("source") == "torchvision" else Path(o.get("weights", "")).stem
    suggested = f"{r.spec.dataset}-{bb}-{r.spec.preset}"          # a widget's value: kept across page visits
    with st.popover(_("Save"), icon=":material/save:", width="stretch"):
        with st.form(f"own_save_{r.job_id}", border=False):
            name = st.text_input(_("Save this run as"), value=suggested, key=key)
            if st.form_submit_button(_("Save run"), icon=":material/save:", type="primary"):
                try:
                    with st.spinner(_("Evaluating on the validation images and saving…")):
                        path = mgr.save(r.job_id, name)
                except (ValueError, FileExistsError, OSError) as e:
                    st.error(str(e))
                    return
                remember_saved("finetune", path)
                st.rerun()


def run_card(mgr: JobManager, r: JobStatus) -> None:
    """One mode's run: its state and progress, its validation accuracy, Stop; once it has
    stopped or finished, Save, and once saved, links that open it in the other pages."""
    st.markdown(f"**{r.label}**")
    if r.state == "error":
        st.error(_("**This run failed:** {error}").format(error=r.error))
        return
    st.progress(min(1.0, max(0.0, r.progress)), text=tr.progress_text(r))
    val = [q.val_accuracy for q in r.records if q.val_accuracy is not None]
    if val:
        st.markdown(_("Validation accuracy **{acc:.0%}** (best {best:.0%})").format(acc=val[-1], best=max(val)))
    if r.active:
        st.button(_("Stop"), icon=":material/stop:", key=f"own_stop_{r.job_id}", on_click=mgr.stop,
                  args=(r.job_id,), disabled=r.stop_requested, width="stretch")
    elif r.saved:
        path = Path(r.saved[-1])
        st.success(_("Saved as **{name}**. Open it in:").format(name=path.stem))
        for page, label, icon, key in OPEN_IN:                   # one a line: a card is narrow
            st.page_link(page, label=_(label), icon=icon, query_params={key: path.stem})
    elif r.records:
        _save(mgr, r)


def runs_view(mgr: JobManager, sid: str, polling: bool) -> None:
    """The last Start's runs: their validation accuracy on one chart, then a card per run
    (inside a fragment that reruns every second while one is active)."""
    mgr.heartbeat(sid)
    ids = st.session_state.get(GROUP) or []
    by_id = {r.job_id: r for r in mgr.jobs(sid)}
    group = [by_id[j] for j in ids if j in by_id]
    if not group:
        st.info(_("No runs yet: press **Train all three ways and compare** above."))
        return
    n_classes = len(getattr(group[0].spec.data, "classes", ()) or ()) or None
    fig = figs.modes_figure([_curve(r) for r in group], chance=1 / n_classes if n_classes else None)
    style.chart(fig, key="own_modes_chart")
    st.caption(_("Each point is the accuracy on your validation images, which none of the runs "
                 "learns from. The head alone and the whole network start from the backbone's "
                 "features; from scratch starts from nothing."))
    cols = st.columns(len(MODES_ALL))
    for col, r in zip(cols, group):
        with col.container(border=True):
            run_card(mgr, r)
    if polling != any(r.active for r in group):
        st.rerun()


def polling(mgr: JobManager, sid: str) -> bool:
    ids = set(st.session_state.get(GROUP) or [])
    return any(r.active for r in mgr.jobs(sid) if r.job_id in ids)

