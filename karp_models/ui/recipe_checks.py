"""Train's collapsed section "Karpathy's sanity checks": for the settings above, a run of this session or a
saved run, the measured loss at initialisation against ln C, a one-batch overfit, and per layer the gradient
norm and update-to-weight ratio over its steps (train/recipe.py; Karpathy 2019, "A Recipe for Training
Neural Networks")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from karp_models.i18n import _
from karp_models.models import REGISTRY
from karp_models.train import recipe
from karp_models.train.runs import list_runs
from karp_models.ui import cache, style, teacher
from karp_models.ui.figures import lessons as figs

STEPS, BATCH = 60, 16
LOW, HIGH = 1e-4, 1e-2          # update ratios far from ~1e-3: too slow, too fast


@dataclass(frozen=True)
class Target:
    label: str
    model: str
    dataset: str
    preset: str | None
    lr: float


def targets(choice, jobs) -> list[Target]:
    """The settings above, this session's runs, then the saved runs: each as what a fresh run starts from."""
    out = [Target(_("The settings above: {model} on {dataset}").format(model=choice.model, dataset=choice.dataset),
                  choice.model, choice.dataset, choice.preset, choice.config.lr)]
    for j in jobs:
        s = j.spec
        out.append(Target(_("Run {label}").format(label=j.label), s.model, s.dataset, s.preset, s.config.lr))
    try:
        saved = list_runs()
    except ValueError:
        saved = []
    for path, meta in saved:
        tr = meta.get("train", {})
        out.append(Target(_("Saved run {name}").format(name=path.stem), meta.get("model", ""),
                          meta.get("dataset", ""), tr.get("preset"), float(tr.get("config", {}).get("lr", 3e-3))))
    return [t for t in out if t.model in REGISTRY and REGISTRY[t.model].task in ("image", "text")] or out[:0]


def section(choice, jobs) -> None:
    """The collapsed section with its button, progress and results."""
    with st.expander(_("Karpathy's sanity checks")):
        st.caption(_("From Karpathy's \"A Recipe for Training Neural Networks\": before a long run, check that "
                     "the loss starts at ln(number of classes), that the network can learn one batch by heart, "
                     "and that each step changes the weights by about a thousandth."))
        found = targets(choice, jobs)
        if not found:
            st.info(_("These checks are for image classifiers and character models; choose one above."))
            return
        pick = st.selectbox(_("Check the run"), range(len(found)), format_func=lambda i: found[i].label,
                            key="train_recipe_run")
        t = found[pick]
        key = ("recipe", t.model, t.dataset, t.preset, t.lr, STEPS, BATCH)
        result = cache.RESULTS.get(key)
        if result is None:
            if st.button(_("Run the checks ({steps} steps on one batch, on the CPU)").format(steps=STEPS),
                         key="train_recipe_go", icon=":material/checklist:", disabled=not teacher.unlocked()):
                result = _compute(key, t)
            else:
                return
        show(result, t)


def _compute(key: tuple, t: Target) -> recipe.Recipe | None:
    def run() -> recipe.Recipe:
        bar = st.progress(0.0, text=_("Training one batch over and over…"))
        try:
            return recipe.checks_for(t.model, t.dataset, preset=t.preset, lr=t.lr, steps=STEPS, batch_size=BATCH,
                                     progress=lambda f: bar.progress(min(1.0, f), text=_(
                                         "Trained {share:.0%} of the steps").format(share=min(1.0, f))))
        finally:
            bar.empty()
    try:
        return cache.result(key, run)
    except Exception as e:          # noqa: BLE001 - missing data or weights: said in words
        st.error(_("The checks could not run: {why}").format(why=e))
        return None


def show(r: recipe.Recipe | None, t: Target) -> None:
    if r is None:
        return
    c1, c2 = st.columns(2)
    with c1:
        if r.expected is not None:
            st.metric(_("Loss at initialisation"), f"{r.initial:.3f}",
                      _("ln C = {ln:.3f}").format(ln=r.expected), delta_color="off", delta_arrow="off")
            st.markdown(style.mark(bool(r.initial_ok)) + " " + (
                _("It starts where a uniform guess would.") if r.initial_ok else
                _("It starts far from a uniform guess: look at the last layer's initial weights.")))
    with c2:
        st.metric(_("One batch of {n}, after {steps} steps").format(n=BATCH, steps=len(r.losses)),
                  f"{r.losses[-1]:.4f}", _("from {start:.3f}").format(start=r.losses[0]), delta_color="off", delta_arrow="off")
        st.markdown(style.mark(r.overfits) + " " + (
            _("It learns one batch by heart.") if r.overfits else
            _("It cannot learn one batch by heart: look for a bug, or a learning rate far off.")))
    if r.expected is not None:
        st.caption(_("The two start values differ on purpose: the loss at initialisation is the fresh network in "
                     "evaluation mode over many images; the one-batch run starts in training mode on its {n} images, "
                     "where batch normalisation and dropout behave differently.").format(n=BATCH))
    left, right = st.columns([1, 1.4])
    with left:
        style.chart(figs.loss_curve(r.losses, title=_("One-batch overfit at lr {lr:g}").format(lr=t.lr)),
                    key="train_recipe_loss")
    with right:
        style.chart(figs.update_ratios(r.stats.names, np.asarray(r.stats.update_ratio), height=420), key="train_recipe_ratios")
    med_r = r.median_ratios()
    med_g = np.median(np.asarray(r.stats.grad_norm), axis=0)
    verdict = [_("too slow") if v < LOW else _("too fast") if v > HIGH else _("about right") for v in med_r]
    st.dataframe(pd.DataFrame({_("Layer"): r.stats.names, _("Median gradient norm"): med_g,
                               _("Median update / weight"): med_r, _("Step size"): verdict}),
                 hide_index=True, width="stretch",
                 column_config={_("Median gradient norm"): st.column_config.NumberColumn(format="%.2e"),
                                _("Median update / weight"): st.column_config.NumberColumn(format="%.1e")})
