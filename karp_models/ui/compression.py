"""The Compression page's widgets: what to try (pruning kinds, sparsities, fine-tune steps, int8,
how many test images), the run under a live progress bar (shared by sessions through
ui.cache), the two trade-off charts, the table of points and the explanations of the original
and a compressed model side by side. The maths is in karp_models.compress, the figures in
ui.figures.compression.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from karp_models import compress
from karp_models import device as dev
from karp_models.i18n import N_, _, language
from karp_models.introspect.attribution import title
from karp_models.introspect.similarity import KINDS as MAP_KINDS
from karp_models.introspect.similarity import MEASURES
from karp_models.models import REGISTRY
from karp_models.ui import cache, style
from karp_models.ui.figures import compression as figs
from karp_models.ui.figures.explain import measure_label
from karp_models.ui.images import display
from karp_models.ui.loaders import dataset
from karp_models.ui.models import ModelChoice, load_model

SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
FINETUNE_STEPS = (0, 25, 50, 100, 200, 300)
TEST_IMAGES = (200, 500, 1000, 2000, 5000, 10000)
KIND_HELP = {"unstructured": N_("the smallest weights anywhere in the network set to 0"),
             "structured": N_("whole output channels of every conv (those with the smallest weights) set to 0")}

# ---------------------------------------------------------------------------- what to try


def settings() -> compress.SweepConfig | None:
    """The sweep the person asks for, or None (with a message) when it asks for nothing."""
    c1, c2 = st.columns(2)
    with c1:
        kinds = st.multiselect(_("Pruning"), compress.KINDS, default=compress.KINDS,
                               format_func=lambda k: _(compress.KIND_NAMES[k]), key="compression_kinds",
                               help=_("Unstructured: {u}. Channels: {s}.").format(
                                   u=_(KIND_HELP["unstructured"]), s=_(KIND_HELP["structured"])))
        shares = st.pills(_("Sparsity: share set to 0 (unstructured: of all weights; channels: of each conv's output channels)"), SPARSITIES, selection_mode="multi",
                          default=(0.5, 0.7, 0.9), format_func=lambda s: f"{s:.0%}", key="compression_sparsity")
        steps = st.select_slider(_("Fine-tune after pruning (training steps)"), FINETUNE_STEPS, value=50,
                                 key="compression_steps",
                                 help=_("0: no fine-tune. Otherwise every pruned model is measured twice: as "
                                        "pruned, and after this many steps of training with its zeros kept "
                                        "(the same trainer as the Train page, batch 128)."))
    with c2:
        int8 = st.toggle(_("int8 quantisation"), value=True, key="compression_int8",
                         help=_("Dynamic: the Linear layers' weights in 8-bit integers, activations quantised "
                                "on the fly. Static: convs and Linears in 8 bits, their activation ranges "
                                "measured on 512 training images first (calibration)."))
        n_test = st.select_slider(_("Test images scored"), TEST_IMAGES, value=1000, format_func=lambda n: f"{n:,}",
                                  key="compression_n_test")
        n_explain = st.select_slider(_("Images whose explanations are compared"), (2, 4, 8), value=4,
                                     key="compression_n_explain")
    if not kinds and not int8:
        st.info(_("Choose a kind of pruning or int8 quantisation."))
        return None
    if kinds and not shares:
        st.info(_("Choose at least one sparsity."))
        return None
    return compress.SweepConfig(kinds=tuple(k for k in compress.KINDS if k in kinds),
                                sparsities=tuple(sorted(shares)) if kinds else (),
                                finetune_steps=int(steps), int8=int8, n_test=int(n_test), n_explain=int(n_explain))


def run(choice: ModelChoice, cfg: compress.SweepConfig) -> compress.Sweep | None:
    """The sweep for this model and settings: computed on the button under a progress bar (once
    per process for everyone who asks the same), then kept shown until a setting changes."""
    key = ("compression", choice.path, choice.mtime, cfg, torch.get_num_threads(), language())
    pruned = len(cfg.kinds) * len(cfg.sparsities)
    n_points = 1 + pruned * (2 if cfg.finetune_steps else 1) + (2 if cfg.int8 else 0)
    if st.button(_("▶ Compress and measure {n} models").format(n=n_points), type="primary", key="compression_run"):
        st.session_state["compression_for"] = key
    if st.session_state.get("compression_for") != key:
        minutes = pruned * cfg.finetune_steps / 100 * 0.5
        st.caption(_("Each model is scored on the test images, timed on the CPU and explained. Fine-tuning takes "
                     "most of the time: about {minutes:.0f} min here for these settings on a 2-core laptop.").format(
                         minutes=max(1.0, minutes)) if cfg.finetune_steps and pruned else
                   _("Each model is scored on the test images, timed on the CPU and explained: under a minute for "
                     "the fast CNN."))
        return None
    res = cache.RESULTS.get(key)
    if res is None:
        bar = st.progress(0.0, text=_("Starting…"))

        def progress(done: int, total: int, what: str) -> None:
            bar.progress(done / total, text=_("Model {k} of {n}: {what}").format(k=min(done + 1, total), n=total,
                                                                                 what=what))

        ck = load_model(choice.path, choice.mtime)
        ds = dataset(choice.dataset)
        res = cache.result(key, lambda: compress.sweep(
            ck.model, ds, cfg, task_kind=REGISTRY[ck.model_name].task, device=dev.pick_device(), progress=progress))
        bar.empty()
    return res

# ---------------------------------------------------------------------------- results


def curves(sw: compress.Sweep) -> None:
    """Accuracy against size and against latency, side by side, with one shared legend."""
    key = ("compression curves", st.session_state.get("compression_for"))
    left, right = st.columns(2)
    for col, axis in ((left, "size"), (right, "latency")):
        fig = cache.figure(key + (axis,), lambda axis=axis: figs.tradeoff_figure(sw.points, axis))
        with col:
            style.chart(fig, width="stretch", key=f"compression_{axis}")
    st.html(figs.legend_html(sw.points))
    orig = sw.original
    size = _("Accuracy on {n:,} test images (the same fixed subset for every model). Size: the saved weights, "
             "a pruned tensor stored as a bitmask of its zeros plus its other values when that is smaller; the "
             "file torch writes as it is stays {dense:.2f} MB however many zeros it holds.").format(
                 n=sw.n_test, dense=orig.size.dense / 1e6)
    if sw.cpu_clock:
        timing = _("Latency: median of 100 single-image forwards after 10 warm-up ones on one CPU thread, counted "
                   "in that thread's CPU time, so other programs busy on the machine do not count; BatchNorm, where "
                   "a model has it, folded into the convs.")
    else:
        timing = _("Latency: median wall time of 100 single-image forwards after 10 warm-up ones on {threads} CPU "
                   "threads; BatchNorm, where a model has it, folded into the convs.").format(threads=sw.threads)
    st.caption(size + " " + timing)
    if any(p.kind in compress.KINDS for p in sw.points):
        st.markdown(_("**Why pruning is no faster here:** PyTorch's dense kernels multiply the zeros too. A "
                      "pruned channel only saves time once it is cut out of the network, and scattered zeros only "
                      "with sparse kernels."))
    if any(p.kind.startswith("int8") for p in sw.points):
        st.markdown(_("**int8** multiplies 8-bit integers, which can be faster, but converting to and from 8 bits "
                      "around the operations it does not cover costs time too: the latency chart shows which wins "
                      "for this model."))
    for kind, why in sw.skipped.items():
        st.warning(_("**{kind}** was left out: {why}.").format(kind=_(compress.KIND_NAMES[kind]), why=why))


def table(sw: compress.Sweep) -> None:
    df = figs.points_frame(sw.points)
    pct = {_(c): "{:.1f}" for c in ("accuracy (%)", "same answer as original (%)", "weights at 0 (%)",
                                     "channels at 0 (%)")}             # msgids already marked in figures
    fmt = {**pct, _("size (MB)"): "{:.2f}", _("latency (ms)"): "{:.2f}", _("speed-up"): "{:.2f}×"}
    fmt.update({c: "{:.2f}" for c in df.columns if c not in fmt})
    st.table(df.style.format(fmt, na_rep="–"))            # wraps its headers: every column in view
    st.caption(_("Speed-up: the original's latency over this model's, the two timed call by call in turns so a "
                 "busy moment of the machine slows both (the original against a copy of itself: how much the "
                 "timing wobbles here). '… like original': the mean Spearman rank correlation of the "
                 "compressed model's map with the original's over the {n} explained images (1: the same pixels in "
                 "the same order; the sanity check's measure). Computed in {s:.0f} s.").format(
                     n=len(sw.targets), s=sw.seconds))


def explanations(sw: compress.Sweep, classes: tuple[str, ...]) -> None:
    """Grad-CAM and Integrated Gradients of one image by the original and a chosen compressed model."""
    others = sw.points[1:]
    if not others or not sw.original.maps:
        return
    st.subheader(_("Do the explanations change?"))
    c1, c2 = st.columns([2, 1])
    labels = [p.label for p in others]
    default = next((i for i, p in enumerate(others) if p.kind == "structured" and p.finetune_steps),
                   next((i for i, p in enumerate(others) if p.kind == "structured"), 0))
    chosen = c1.selectbox(_("Compressed model"), range(len(others)), index=default, format_func=lambda i: labels[i],
                          key="compression_point")
    i = int(c2.segmented_control(_("Image"), range(len(sw.targets)), default=0, format_func=lambda k: str(k + 1),
                                 key="compression_image") or 0)
    p = others[chosen]
    orig = sw.original
    t = int(sw.targets[i])
    fig = cache.figure(("compression maps", st.session_state.get("compression_for"), chosen, i), lambda: figs.maps_figure(
        {m: a[i] for m, a in orig.maps.items()}, {m: a[i] for m, a in p.maps.items()}, sw.images[i], p.label))
    c_img, c_maps = st.columns([1, 3])
    c_img.image(display(sw.images[i], side=style.px(200)), width="stretch")
    with c_maps:
        style.chart(fig, width="stretch", key="compression_maps")
    c_img.caption(_("Test image of class **{truth}**; both models explain the original's prediction, **{target}**. "
                 "Red: for the class, blue: against it.").format(truth=classes[int(sw.labels[i])],
                                                                 target=classes[t]))
    if p.kind.startswith("int8"):
        st.info(_("An int8 model has no gradients, so these maps come from its dequantised twin: the float model "
                  "with the int8 weights (each 8-bit value times its scale), activations in float. The twin "
                  "gives the int8 model's answer on {share:.1%} of the test images.").format(share=p.twin_agreement))
    rows = {}
    for m, sims in p.similarity.items():
        s = sims[i]
        row = {measure_label(f"{ms} {k}"): s.values.get(f"{ms} {k}") for k in MAP_KINDS for ms in MEASURES}
        row[_("cannot judge because")] = s.reason or ""
        rows[title(m)] = row
    df = pd.DataFrame(rows).T
    df = df.loc[:, [c for c in df.columns if df[c].notna().any() and (df[c] != "").any()]]
    numbers = [c for c in df.columns if c != _("cannot judge because")]
    df[numbers] = df[numbers].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
    df.index.name = _("this image")
    st.dataframe(df, width="stretch")
    st.caption(_("The sanity check's similarities of the compressed model's map with the original's (1: alike, "
                 "0: unrelated): Spearman, the order of the pixels; SSIM, the regions; HOG, the edges; on |map| and, "
                 "for Integrated Gradients, on the signed map."))
