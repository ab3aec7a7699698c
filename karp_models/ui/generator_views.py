"""The Generate images page's views of a generator from outside its grid: the discriminator's
verdict on a person's image (upload, drawing, test image or sample; preprocessed as Predict
does) or a VAE's reconstruction of it, and the time-lapse of the grids kept while a run trained.
The generator, its grid and the cached drawing are ui.generate_images'.
"""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from karp_models.i18n import N_, _, language
from karp_models.introspect import generative as gen
from karp_models.train.previews import snapshots_from_meta
from karp_models.train.tasks.base import fixed_subset
from karp_models.train.tasks.generative import Samples
from karp_models.ui import cache, loaders, style
from karp_models.ui.figures import generative as figs
from karp_models.ui.generate_images import P, Generator, Grid, draw
from karp_models.ui.images import display
from karp_models.ui.models import load_model

# --- the discriminator's verdict (GAN) or the reconstruction (VAE) of a person's image


SOURCES = (N_("Upload"), N_("Draw"), N_("Test image"), N_("A sample from the grid"))  # shown with _()


def _target(g: Generator):
    from karp_models.ui.predict import Target

    return Target(model=None, key="", classes=g.classes, dataset=g.dataset, channels=g.channels,
                  size=g.size, resize=None, origin=g.origin, title=g.title, meta={})


def image_input(g: Generator, grid: Grid) -> tuple[np.ndarray, int | None, str] | None:
    """The person's image as the model takes it: (x (C, H, W) float32 in [0, 1], its class when
    known, where it came from); None (with a message) until there is one."""
    from karp_models.ui import predict as pr

    source = st.radio(_("Image from"), SOURCES, index=2, horizontal=True, key=f"{P}_source",
                      format_func=lambda s: _(s))
    if source == "Test image":
        ds = loaders.dataset(g.dataset)
        n = len(ds.test_y)
        i = int(st.number_input(_("Test image (0 to {last})").format(last=f"{n - 1:,}"), 0, n - 1, 0,
                                key=f"{P}_test_index"))
        return ds.test_x[i].numpy().astype(np.float32) / 255, int(ds.test_y[i]), _("test image #{i}").format(i=i)
    if source == "A sample from the grid":
        i = int(st.number_input(_("Sample"), 0, len(grid.z) - 1, 0, key=f"{P}_sample_index"))
        return grid.images[i].astype(np.float32) / 255, grid.label_of(i), _("sample {i}").format(i=i)
    if source == "Upload":
        f = st.file_uploader(_("An image file (PNG, JPEG, WEBP, ...)"), type=pr.UPLOAD_TYPES,
                             key=f"{P}_upload")
        raw = pr.Raw(source=f"upload: {f.name}", data=f.getvalue(), name=f.name) if f else None
    else:
        raw = pr.canvas_input(key=P)
    if raw is None:
        if source == "Upload":
            st.info(_("Upload a picture of a piece of clothing, or choose another source."))
        return None
    result = pr.handle_raw(raw, _target(g))
    if result is None:
        return None
    _decoded, pipe = result
    with st.expander(_("How the image becomes the model's input ({n} steps)").format(n=len(pipe.steps))):
        pr.show_pipeline(_decoded, pipe)
    if pipe.blank:
        st.warning(_("Nothing is left of this image after preprocessing; try one whose object "
                     "stands out from its background."))
        return None
    return pipe.x.astype(np.float32), None, raw.source


@st.cache_data(max_entries=8, show_spinner=False)
def reference_verdicts(path: str, mtime: float, dataset: str, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The discriminator's outputs on n fixed real test images and on n samples (each told its
    own class when conditional): (real (n,), generated (n,))."""
    model = load_model(path, mtime).model
    ds = loaders.dataset(dataset)
    idx = fixed_subset(len(ds.test_x), min(n, len(ds.test_x)))
    y = ds.test_y[idx] if model.config.conditional else None
    z = torch.randn(len(idx), model.config.latent, generator=torch.Generator().manual_seed(4321))
    fake = torch.from_numpy(draw(path, mtime, z.numpy(), None if y is None else y.numpy()))
    return gen.verdict(model, ds.test_x[idx], y), gen.verdict(model, fake, y)


def _p(v: np.ndarray | float, probability: bool) -> np.ndarray | float:
    return 1 / (1 + np.exp(-np.asarray(v))) if probability else np.asarray(v)


def verdict_view(g: Generator, grid: Grid) -> None:
    """The discriminator's verdict on an image, beside its verdicts on real and generated ones."""
    got = image_input(g, grid)
    if got is None:
        return
    x, label, source = got
    real, fake = reference_verdicts(g.path, g.mtime, g.dataset)
    prob = g.probability
    left, right = st.columns([1, 2])
    left.image(display(x, side=style.px(220)), caption=_("{source}, as the discriminator sees it").format(source=source))
    xt = torch.from_numpy(x)[None]
    with right:
        if g.conditional:
            K = len(g.classes)
            v = _p(gen.verdict(g.model, xt.repeat(K, 1, 1, 1), torch.arange(K)), prob)
            rows = [(_("a real {cls}?").format(cls=_(c)) + (" " + _("(its class)") if k == label else ""),
                     float(s)) for k, (c, s) in enumerate(zip(g.classes, v))]
            best = int(np.argmax(v))
            style.chart(figs.verdict_figure(rows, prob, highlight=best), key=f"{P}_verdict",
                        config={"displayModeBar": False})
            st.markdown(_("Told each class in turn, the discriminator finds this image most "
                          "believable as a real **{cls}**.").format(cls=_(g.classes[best])))
        else:
            v = float(_p(gen.verdict(g.model, xt)[0], prob))
            rows = [(_("your image"), v), (_("real test images (mean)"), float(_p(real, prob).mean())),
                    (_("generated samples (mean)"), float(_p(fake, prob).mean()))]
            style.chart(figs.verdict_figure(rows, prob), key=f"{P}_verdict",
                        config={"displayModeBar": False})
    st.caption(_("The discriminator was trained to tell the training images from the generator's "
                 "pictures of the moment. By the end of a good run neither side wins: it is "
                 "unsure about both, often near 50%, so its verdict says more about what it "
                 "learnt to notice than about whether an image is real."))


def reconstruct_view(g: Generator, grid: Grid) -> None:
    """A VAE's view of an image: its reconstruction through the encoder's mean and the loss."""
    got = image_input(g, grid)
    if got is None:
        return
    x, label, source = got
    if g.conditional:
        label = st.selectbox(_("Class to tell the VAE"), range(len(g.classes)), index=label or 0,
                             format_func=lambda k: _(g.classes[k]), key=f"{P}_rec_class")
    xt = torch.from_numpy(x)[None].to(next(g.model.parameters()).device)
    lt = None if label is None else torch.tensor([label], device=xt.device)
    with torch.no_grad():
        mu, _logvar = g.model.encode(xt, lt)
        rec = g.model.generate(mu, lt)[0].cpu().numpy()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _r, losses = g.model(xt, lt)
    c = st.columns([1, 1, 2])
    c[0].image(display(x, side=style.px(200)), caption=source)
    c[1].image(display(rec, side=style.px(200)), caption=_("reconstructed through z = mean"))
    test = g.meta.get("metrics", {}).get("test_loss")
    with c[2]:
        st.metric(_("Loss of this image (negative ELBO)"), f"{float(losses['loss']):.0f}",
                  help=_("Nats per image: the reconstruction error plus the KL term. Lower means "
                         "the VAE finds the image easy to explain."))
        if test is not None:
            st.caption(_("Test images average {t:.0f}. An image unlike the training data costs "
                         "more.").format(t=test))


# --- the time-lapse


def _timelapse_runs(g: Generator) -> tuple[dict[str, list], bool]:
    """{name: [(step, images)]} of this session's generator runs and the chosen saved run; and
    whether one of them is still training."""
    from karp_models.ui.training import manager, session_id

    runs, active = {}, False
    for j in manager().jobs(session_id()):
        if j.snapshots and j.snapshot_key == Samples.snapshot_key:
            runs[_("this session: {label} ({state})").format(label=j.label, state=j.state)] = list(j.snapshots)
            active |= j.active
    entry = g.meta.get(Samples.snapshot_key)
    if entry:
        try:
            runs[_("saved run: {name}").format(name=g.title)] = snapshots_from_meta(entry)
        except ValueError as e:
            st.warning(_("The grids saved in this file cannot be read: {error}").format(error=e))
    return runs, active


def timelapse_view(g: Generator) -> None:
    """The grids kept while a run trained, with a slider and a play button (redraws while a run
    of this session trains)."""
    _runs, active = _timelapse_runs(g)

    @st.fragment(run_every=3.0 if active else None)
    def body() -> None:
        runs, _a = _timelapse_runs(g)
        if not runs:
            why = (_("The shipped generators were trained with the command line, which keeps "
                     "only the final weights.") if g.origin == "shipped" else
                   _("This saved run has no grids (it was saved before karp kept them)."))
            st.info(_("**No time-lapse for this model.** {why} Train a GAN or a VAE on the "
                      "**Train** page: its grid of samples is kept every 25 steps, shown here "
                      "while this browser session lasts, and 32 of them are saved with the run.").format(why=why))
            return
        pick = st.selectbox(_("Run"), list(runs), key=f"{P}_tl_run")
        snaps = runs[pick]
        first = snaps[-1][1]
        rows = None
        K = len(g.classes)
        if g.conditional and len(first) == K * 8:
            rows = [_(c) for c in g.classes]
        key = ("timelapse", pick, len(snaps), snaps[-1][0], language())
        fig = cache.figure(key, lambda: figs.timelapse(snaps, 8, rows,
                                                       _("step"), _("Play"), _("Pause")))
        style.chart(fig, key=f"{P}_timelapse", config={"displayModeBar": False})
        st.caption(_("The same latent vectors at every step of the run ({n} pictures from step "
                     "{a} to {b}): press Play, or drag the slider.").format(
            n=len(snaps), a=f"{snaps[0][0]:,}", b=f"{snaps[-1][0]:,}"))

    body()

