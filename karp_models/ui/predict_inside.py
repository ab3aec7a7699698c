"""The Predict page's look inside: each layer's feature maps, the first layer's filters, what a
channel or class wants to see (activation maximisation, introspect.maximise), the filters
during training (the snapshots a run saved) and the time-lapse (a saved run's whole-model
snapshots replayed on the image). Figures are in ui.figures.predict.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from karp_models.i18n import N_, _
from karp_models.introspect import features as feat
from karp_models.introspect import maximise as am
from karp_models.ui import cache, style
from karp_models.ui.figures.predict import (
    channel_figure,
    filters_figure,
    maps_figure,
    objective_figure,
)
from karp_models.ui.images import display
from karp_models.ui.predict import Target

# ---------------------------------------------------------------------------- feature maps and filters


def feature_maps_tab(t: Target, maps: dict[str, np.ndarray], x: np.ndarray) -> None:
    """Every channel of a chosen layer's feature maps for input `x`, and one channel zoomed in."""
    if not maps:
        st.info(_("This model has no convolutional feature maps (a vision transformer cuts the image "
                  "into patches): see the **ViT attention** page for what it looks at."))
        return
    c1, c2 = st.columns([2, 1])
    layer = c1.selectbox(_("Layer"), list(maps), index=0, key="predict_layer", bind="query-params",
                         format_func=lambda n: _("{layer}: {c} channels of {h}×{w}").format(
                             layer=n, c=maps[n].shape[0], h=maps[n].shape[1], w=maps[n].shape[2]))
    m = maps[layer]
    ch = int(c2.number_input(_("Zoom into channel"), 0, m.shape[0] - 1, 0, key=f"predict_channel_{layer}"))
    g1, g2 = st.columns([3, 2])
    with g1:
        st.markdown(_("**All {c} channels of {layer}** (bright = strong activation; each channel on its "
                      "own scale; hover for its number)").format(c=m.shape[0], layer=layer))
        style.chart(cache.figure(("maps", t.key, cache.image_key(x), layer), lambda: maps_figure(m)),
                    key="predict_maps")
    with g2:
        style.chart(channel_figure(m[ch], _("channel {n}").format(n=ch)), key="predict_zoom")
        st.caption(_("max {max:.3f}, mean {mean:.3f}. Early layers respond to edges and strokes; later "
                     "ones to larger parts, at lower resolution.").format(max=m[ch].max(), mean=m[ch].mean()))


def filters_tab(t: Target) -> None:
    """The first convolution's filters, as weights or as colour images."""
    w = feat.filter_weights(t.model)
    if w is None:
        st.info(_("This model has no convolution layer."))
        return
    name = feat.first_conv(t.model)[0]
    st.markdown(_("**{n} filters of {layer}**, each {h}×{w} over {c} input channel(s).").format(
        n=w.shape[0], layer=name, h=w.shape[2], w=w.shape[3], c=w.shape[1]) + " " + (
            _("**Red** weights respond to bright pixels, **blue** to dark ones; each filter is shown on its "
              "own scale.") if w.shape[1] != 3 else _("Shown as colour images (grey = zero weight).")))
    style.chart(cache.figure(("filters", t.key), lambda: filters_figure(w)), key="predict_filters")


# ---------------------------------------------------------------------------- activation maximisation

AM_PARAMS = {"fourier": N_("Fourier components (Lucid)"), "pixels": N_("pixels")}          # shown with _()
AM_REG = {N_("none"): (0, 0), N_("light"): (5e-4, 2e-3), N_("medium"): (2e-3, 1e-2), N_("strong"): (5e-3, 3e-2)}
AM_GOALS = (N_("a channel"), N_("a class"))


def maximise_tab(t: Target, maps: dict[str, np.ndarray]) -> None:
    """'What a channel wants to see': the controls, a run with a progress bar, and the result
    with whether its objective rose. Defaults: the last feature layer (its units see the whole
    image) and the channel the current image excites most there; a Fourier image without
    penalties (Lucid's). `maps`: the current image's feature maps {layer: (C, H, W)}."""
    st.markdown(_("Start from faint noise and change the **image** (not the network) step by step so "
                  "that one channel, or one class score, grows as large as it can. The image is made "
                  "of Fourier components, coarse and fine equally easy to change, and is shifted, "
                  "scaled and turned a little at every step, so it becomes a pattern rather than "
                  "noise (Olah et al., *Feature Visualization*, 2017)."))
    layers = list(maps)
    c1, c2, c3 = st.columns(3)
    goal = c1.radio(_("Excite"), AM_GOALS, format_func=_, key="predict_am_goal", horizontal=True)
    if goal == AM_GOALS[0] and layers:
        am_layer = c1.selectbox(_("Layer"), layers, index=len(layers) - 1, key="predict_am_layer")
        strongest = int(maps[am_layer].mean(axis=(1, 2)).argmax())
        am_channel = int(c1.number_input(
            _("Channel"), 0, maps[am_layer].shape[0] - 1, strongest,
            key=f"predict_am_channel_{am_layer}_{strongest}",  # a new image starts at its own channel
            help=_("Starts at channel {n}, the one your image excites most in this layer.").format(n=strongest)))
        am_class = None
    else:
        if goal == AM_GOALS[0]:
            st.info(_("No convolutional layers here: excite a class instead."))
        am_layer, am_channel = None, None
        am_class = c1.selectbox(_("Class"), range(len(t.classes)), key="predict_am_class",
                                format_func=lambda i: t.classes[i])
    big_model = t.size >= 96                     # ImageNet-sized input: fewer, heavier steps
    steps = c2.slider(_("Steps"), 16, 512 if not big_model else 128, 128 if not big_model else 32,
                      step=16, key="predict_am_steps")
    jitter = c2.slider(_("Jitter (pixels)"), 0, 8, 2 if not big_model else 8, key="predict_am_jitter")
    param = c3.radio(_("Image made of"), list(AM_PARAMS), format_func=lambda p: _(AM_PARAMS[p]),
                     key="predict_am_param", horizontal=True)
    reg = c3.select_slider(_("Penalties on extreme and jumpy pixels"), list(AM_REG), "none", format_func=_,
                           key="predict_am_reg")
    blur = c3.checkbox(_("Blur every 4 steps (pixels)"), False, key="predict_am_blur",
                       disabled=param != "pixels")
    if st.button(_("▶ Run activation maximisation"), key="predict_am_run"):
        bar = st.progress(0.0, text=_("Optimising the image…"))

        def tick(i: int, n: int, obj: float) -> None:
            if i % 4 == 0 or i == n:
                bar.progress(i / n, text=_("step {i} of {n}: objective {value:.3f}").format(i=i, n=n, value=obj))

        l2, tv = AM_REG[reg]
        r = am.maximise(t.model, layer=am_layer, channel=am_channel, class_index=am_class,
                        shape=(3, t.size, t.size) if big_model else None, param=param, steps=steps,
                        jitter=jitter, l2=l2, tv=tv, blur_every=4 if blur and param == "pixels" else 0,
                        progress=tick)
        bar.empty()
        yours = float(maps[am_layer][am_channel].mean()) if am_layer is not None else None
        st.session_state["predict_am_result"] = (t.key, r, yours)
    res = st.session_state.get("predict_am_result")
    if res is None or res[0] != t.key:
        return
    _key, r, yours = res
    if r.target.startswith("class"):
        name = t.classes[int(r.target.split()[1])]
        what, ref = _("score (logit) of {name}").format(name=name), None
    else:
        n, layer = r.target.removeprefix("channel ").split(" of ", 1)          # "channel 3 of conv2"
        name = _("channel {n} of {layer}").format(n=n, layer=layer)
        what, ref = _("mean activation"), (None if yours is None else (_("your image"), yours))
    a1, a2 = st.columns([1, 2])
    a1.image(display(r.image, side=style.px(300)), caption=_("what excites {name}").format(name=name))
    with a2:
        style.chart(objective_figure(r.objective, what, ref), key="predict_am_curve")
        if r.rose:
            rose = (_("The {what} rose from **{start:.3f}** (the starting noise) to **{end:.3f}** (this image); "
                      "your image gives {yours:.3f}.") if ref else
                    _("The {what} rose from **{start:.3f}** (the starting noise) to **{end:.3f}** (this image)."))
            st.markdown(rose.format(what=what, start=r.start, end=r.end, yours=yours))
            st.caption(_("The curve is measured on the randomly shifted, scaled and turned copies the "
                         "optimisation sees at each step; the numbers above are measured on the image itself, "
                         "as shown, so the end of the curve and the last number differ."))
        else:
            st.warning(_("**The {what} did not rise** ({start:.3f} at the start, {end:.3f} at the end): {why}").format(
                what=what, start=r.start, end=r.end, why=r.why), icon=":material/warning:")
        p_am = feat.predict(t.model, r.image)
        st.markdown(_("The model calls this image **{name}** ({p:.0%}).").format(
            name=t.classes[int(p_am.argmax())], p=p_am.max()))


# ---------------------------------------------------------------------------- filter evolution


def _evolution_runs(t: Target) -> tuple[dict[str, list], bool]:
    """{name: [(step, weights)]} of this session's image runs and of the chosen saved run; and
    whether one of them is still training."""
    from karp_models.train.previews import Predictions
    from karp_models.ui.training import manager, session_id

    runs, active = {}, False
    for j in manager().jobs(session_id()):
        if j.snapshots and j.snapshot_key == Predictions.snapshot_key:  # not a generator's grids
            runs[_("this session: {run}").format(run=j.label)] = list(j.snapshots)  # no state: a choice outlives it
            active |= j.active
    evo = t.meta.get("filter_evolution")
    if evo:
        runs[_("saved run: {run}").format(run=t.title)] = [(s, np.asarray(w, np.float32))
                                         for s, w in zip(evo["steps"], evo["weights"])]
    return runs, active


def evolution_tab(t: Target) -> None:
    """A slider over training time for the first-layer filters of a run (redraws while it trains)."""
    runs, active = _evolution_runs(t)

    @st.fragment(run_every=3.0 if active else None)
    def body() -> None:
        runs = _evolution_runs(t)[0]
        if not runs:
            why = (_("The shipped weights were trained with the command line, which keeps only the "
                     "final weights, so there is no history to replay.") if t.origin == "shipped" else
                   _("ImageNet weights come finished from torchvision: their training history is "
                     "not published.") if t.origin == "imagenet" else
                   _("This saved run has no snapshots (it was saved before karp kept them)."))
            st.info(_("**Filter evolution is not available for this model.** {why} Train an image model on "
                      "the **Train** page: its first-layer filters are photographed at every preview (every "
                      "50 steps), shown here while this browser session lasts, and 32 of them are kept when "
                      "you save the run.").format(why=why))
            return
        pick = st.selectbox(_("Run"), list(runs), key="predict_evo_run")
        snaps = runs[pick]
        steps = [s for s, _ in snaps]
        if len(snaps) == 1:
            i = 0
            st.info(_("One snapshot so far (step {step:,}); the next comes with the run's next preview. "
                      "This view refreshes by itself while the run trains.").format(step=steps[0]))
        else:
            i = st.select_slider(_("Training step"), options=list(range(len(steps))),
                                 value=len(steps) - 1, format_func=lambda k: f"{steps[k]:,}",
                                 key=f"predict_evo_step_{pick}_{len(steps)}")
        scale = feat.evolution_scale(snaps)
        st.markdown(_("**Step {step:,}** of {last:,}: every filter on one scale across the run (its "
                      "largest weight ever), so you see them grow from random noise into edge and blob "
                      "detectors.").format(step=steps[i], last=steps[-1]))
        style.chart(filters_figure(snaps[i][1], scale), key="predict_evo_fig")

    body()


# ---------------------------------------------------------------------------- training time-lapse


def _lapses(t: Target) -> list:
    """The saved run's time-lapse (ui.timelapse.Lapse), then this browser's image runs on the same
    data with snapshots so far (still training, or not yet saved)."""
    from karp_models.models import REGISTRY
    from karp_models.ui import timelapse as tlv

    if t.origin == "imagenet" or not t.key:
        return []
    out = []
    if t.origin == "run":
        path, mtime = t.key.rsplit(":", 1)
        lp = tlv.saved_lapse(path, mtime, t.model, _("saved run: {run}").format(run=t.title))
        out += [lp] if lp is not None else []
    image_models = tuple(n for n, s in REGISTRY.items() if s.task in ("image", "finetune"))
    return out + tlv.live_lapses(image_models, t.dataset)


def timelapse_tab(t: Target, x: np.ndarray) -> None:
    """A slider over a run's whole-model snapshots (a saved run's, or one of this browser's runs
    while it trains): for image x (C, H, W) in [0, 1], each snapshot's filters, feature maps,
    prediction, Grad-CAM and IG, and a chart of how far its maps already agree with the final
    (or latest) model's (introspect.timelapse)."""
    from karp_models.ui import timelapse as tlv

    try:
        lapses = _lapses(t)
    except Exception as e:  # noqa: BLE001 - a damaged file: say so, the page goes on
        st.error(_("This run's time-lapse cannot be read: {error}").format(error=e))
        return
    if not any(len(lp.steps) >= 2 for lp in lapses):
        st.info(_("**No time-lapse for this model.** Train an image model on the **Train** page and "
                  "save the run: it keeps up to 12 copies of the whole model at evenly spaced steps "
                  "(fewer for a big model), and this tab replays the image above through each of "
                  "them. Shipped weights, ImageNet models and runs saved before karp kept them have "
                  "none."))
        return
    lapses = [lp for lp in lapses if len(lp.steps) >= 2]
    lapse = tlv.pick("predict_tl", lapses)
    label = (_("Replay the run on this image (its snapshots so far)") if lapse.live else  # it grows
             _("Replay the run on this image ({n} snapshots, steps {first:,} to {last:,})").format(
                 n=len(lapse.steps), first=lapse.steps[0], last=lapse.steps[-1]))
    if not st.toggle(label, key="predict_tl_on"):
        st.caption(_("Each snapshot's Grad-CAM and Integrated Gradients are computed once per image; "
                     "on a laptop that takes a few seconds."))
        return

    @st.fragment(run_every=tlv.REFRESH_S if lapse.live else None)
    def replay() -> None:
        now = next((lp for lp in _lapses(t) if lp.key == lapse.key), lapse) if lapse.live else lapse
        _replay(t, x, now)

    replay()


def _replay(t: Target, x: np.ndarray, lapse) -> None:
    """The time-lapse of one run on image x (see timelapse_tab)."""
    import torch

    from karp_models.introspect import timelapse as lapse_mod
    from karp_models.ui.figures.explain import overlay_figure, short
    from karp_models.ui.figures.predict import timelapse_figure

    snaps, steps = lapse.snapshots, lapse.steps
    lapse_key = (*lapse.key, tuple(steps))
    if lapse.live:
        st.caption(_("This run is still training: new snapshots appear here as it reaches them, and the "
                     "agreement is measured against its latest one."))
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
    with st.spinner(_("Replaying {n} snapshots…").format(n=len(steps))):
        try:
            target, frames = cache.result(("timelapse", lapse_key, cache.image_key(x)),
                                          lambda: lapse_mod.frames(lapse.model, snaps, xt))
        except (ValueError, RuntimeError) as e:
            st.error(_("The time-lapse cannot be replayed on this model: {error}").format(error=e))
            return
    i = st.select_slider(_("Training step"), options=list(range(len(steps))), value=len(steps) - 1,
                         format_func=lambda k: f"{steps[k]:,}", key=f"predict_tl_step_{lapse.key[-1]}_{len(steps)}")
    f = frames[i]
    name, said = t.classes[target], int(f.probs.argmax())
    st.markdown(_("**Step {step:,}** of {last:,}: the model says **{said}** ({p:.0%}). The maps explain "
                  "**{name}**, the final model's answer, at every step, so they can be compared.").format(
        step=f.step, last=steps[-1], said=t.classes[said], p=float(f.probs[said]), name=name))
    c_maps, c_chart = st.columns([3, 2])
    with c_maps:
        style.chart(overlay_figure(x, f.attributions, title_of=short, first=_("input"), cols=3,
                                   height_per_row=260), key="predict_tl_maps")
    with c_chart:
        series = {_("{method} agrees with the final map").format(method=short(m)): [fr.agreement[m] for fr in frames]
                  for m in lapse_mod.METHODS}
        series[_("probability of {name}").format(name=name)] = [float(fr.probs[target]) for fr in frames]
        style.chart(timelapse_figure(steps, series, f.step), key="predict_tl_chart")
    st.caption(_("Agreement: the Spearman rank correlation of this snapshot's |map| with the final "
                 "model's |map| (1 = the same pixels in the same order; a gap: the map is flat, e.g. "
                 "Grad-CAM before the last layer's channels mean anything). At step 0 of a run started "
                 "from scratch the weights are random, so a map that already agrees there is drawing the image rather than the model, "
                 "which is what the model-randomisation sanity check on **Explain** tests (Adebayo et "
                 "al. 2018); a map that only agrees once the probability rises passes it."))
    scale = feat.evolution_scale([(fr.step, fr.filters) for fr in frames]) if f.filters is not None else None
    c_filters, c_fm = st.columns([2, 3])
    with c_filters:
        st.markdown(_("**First-layer filters** at step {step:,} (one scale across the run)").format(step=f.step))
        if f.filters is not None:
            style.chart(filters_figure(f.filters, scale, height=360), key="predict_tl_filters")
    with c_fm:
        layer = st.radio(_("Feature maps of"), list(f.maps), horizontal=True, key="predict_tl_layer",
                         format_func=lambda n: _("{layer} ({c} channels of {h}×{w})").format(
                             layer=n, c=f.maps[n].shape[0], h=f.maps[n].shape[1], w=f.maps[n].shape[2]))
        style.chart(maps_figure(f.maps[layer]), key="predict_tl_fm")
