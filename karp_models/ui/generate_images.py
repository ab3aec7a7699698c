"""The Generate images page's widgets: choose a generator (shipped or a saved run), sample a grid
from a seed, walk from one sample to another (spherical and straight), latent arithmetic and a
VAE's latent map (click to decode). A person's own image and the time-lapse are in
ui.generator_views.

The maths is in introspect.generative (slerp, arithmetic, the latent plane, the verdict), the
figures in ui.figures.generative; results are cached here by (model file, mtime, inputs), models
in ui.models (shared, eval mode, never mutated).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from karp_models.i18n import _, language
from karp_models.introspect import generative as gen
from karp_models.train.tasks.base import fixed_subset
from karp_models.train.tasks.generative import as_uint8, grid_latents
from karp_models.ui import cache, loaders, style
from karp_models.ui.figures import generative as figs
from karp_models.ui.images import display
from karp_models.ui.models import load_model, model_picker

P = "generate_images"                      # the page's widget-key prefix
SPREADS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
COUNTS = [16, 32, 64]
MAP_POINTS = 5000                          # test images on a VAE's latent map
MAP_GRID = 41                              # clickable points per side of the map

# --- the generator


@dataclass(frozen=True)
class Generator:
    """A loaded GAN or VAE with what the page needs to know about it."""

    model: torch.nn.Module
    path: str
    mtime: float
    name: str                  # registry name: dcgan, cdcgan, vae, cvae
    kind: str                  # 'gan' | 'vae'
    conditional: bool
    latent: int
    classes: tuple[str, ...]
    dataset: str
    channels: int
    size: int
    meta: dict
    title: str
    origin: str                # 'shipped' | 'run'

    @property
    def probability(self) -> bool:
        """A GAN whose discriminator gives probabilities (DCGAN's loss), not critic scores."""
        return getattr(self.model.config, "loss", "bce") == "bce"


def picker() -> Generator | None:
    """The generator picker (shipped weights and saved runs, in the page's link); None with a
    message when there is none."""
    from karp_models.models import REGISTRY

    picked = model_picker(f"{P}_model", task="generator", label=_("Generator"),
                          default="dcgan-fashion-mnist")
    if picked is None:
        return None
    ck, c = picked
    cfg = ck.model.config
    classes = tuple(ck.meta.get("classes") or [str(k) for k in range(cfg.n_classes)])
    return Generator(model=ck.model, path=c.path, mtime=c.mtime, name=c.model_name,
                     kind=REGISTRY[c.model_name].task, conditional=bool(cfg.conditional),
                     latent=int(cfg.latent), classes=classes, dataset=c.dataset,
                     channels=int(cfg.in_channels), size=int(cfg.image_size), meta=ck.meta,
                     title=c.label, origin=c.origin)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@st.cache_data(max_entries=64, show_spinner=False)
def draw(path: str, mtime: float, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """The generator's images (N, C, H, W) uint8 for latents z (N, latent) [and labels (N,)]."""
    model = load_model(path, mtime).model
    dev = _device(model)
    with torch.no_grad():
        x = model.generate(torch.from_numpy(z).float().to(dev),
                           None if labels is None else torch.from_numpy(labels).long().to(dev))
    return as_uint8(x)


@dataclass(frozen=True)
class Grid:
    """The samples on the page: latents z (N, latent) float32, labels (N,) or None, `columns` a
    row, and the images drawn from them."""

    z: np.ndarray
    labels: np.ndarray | None
    columns: int
    images: np.ndarray

    def label_of(self, i: int) -> int | None:
        return None if self.labels is None else int(self.labels[i])


def make_grid(g: Generator, seed: int, n: int, cls: int | None, spread: float) -> Grid:
    """The grid for a seed: n samples (a conditional model: of class `cls`, or with cls None one
    row of 8 per class, the same z down each column). Seed 0 at spread 1 with 64 samples (every
    class, for a conditional model) is the grid the Train page watched while the model learnt."""
    if g.conditional and cls is None:
        z, labels = grid_latents(g.latent, seed, len(g.classes))
    else:
        z, labels = grid_latents(g.latent, seed, n=n)
        if g.conditional:
            labels = torch.full((n,), int(cls))
    z = (z * spread).numpy().astype(np.float32)
    labels = None if labels is None else labels.numpy()
    return Grid(z=z, labels=labels, columns=8, images=draw(g.path, g.mtime, z, labels))


def _new_seed() -> None:
    st.session_state[f"{P}_seed"] = int(np.random.default_rng().integers(0, 100_000))


def sample_controls(g: Generator, container) -> tuple[int, int, int | None, float]:
    """Seed, number of samples, class (conditional) and spread, in `container`."""
    seed = container.number_input(_("Seed"), 0, 2 ** 31 - 1, 0, key=f"{P}_seed", bind="query-params",
                                  help=_("The seed fixes the random latent vectors z: the same seed "
                                         "always draws the same grid."))
    container.button(_("New seed"), icon=":material/casino:", key=f"{P}_new_seed", on_click=_new_seed,
                     width="stretch")
    cls = None
    if g.conditional:
        cls = container.selectbox(_("Class to draw"), [None, *range(len(g.classes))], key=f"{P}_class",
                                  format_func=lambda k: _("Every class, a row each") if k is None
                                  else _(g.classes[k]))
    n = container.select_slider(_("Samples"), COUNTS, value=32, key=f"{P}_n",
                                disabled=g.conditional and cls is None)
    spread = container.select_slider(
        _("Spread of z"), SPREADS, value=1.0, key=f"{P}_spread", format_func=lambda v: f"{v:g}",
        help=_("The latent vectors are drawn from a standard normal distribution and multiplied "
               "by this. Below 1 the samples are more typical and more alike (the truncation "
               "trick of BigGAN), above 1 stranger."))
    return int(seed), int(n), cls, float(spread)


def show_grid(g: Generator, grid: Grid, seed: int) -> None:
    rows = None
    if grid.labels is not None and len(set(grid.labels.tolist())) > 1:
        rows = [_(g.classes[int(k)]) for k in grid.labels[::grid.columns]]
    key = ("genimg_grid", g.path, g.mtime, cache.image_key(grid.z),
           None if grid.labels is None else cache.image_key(grid.labels), language())
    fig = cache.figure(key, lambda: figs.sample_grid(grid.images, grid.columns, scale=figs.scale_for(g.size),
                                                     row_labels=rows, numbers=True))
    style.chart(fig, key=f"{P}_grid", config={"displayModeBar": False})
    st.caption(_("Each picture is the generator's output for one random vector z of {d} numbers; "
                 "its number (top left) is how the views below choose it. Seed {seed}.").format(
        d=g.latent, seed=seed))


# --- interpolation


def interpolate_view(g: Generator, grid: Grid) -> None:
    """From sample A to sample B along the great circle (slerp) and along the straight line."""
    N = len(grid.z)
    c = st.columns(3)
    a = int(c[0].number_input(_("From sample A"), 0, N - 1, 0, key=f"{P}_ia"))
    b = int(c[1].number_input(_("to sample B"), 0, N - 1, min(1, N - 1), key=f"{P}_ib"))
    steps = int(c[2].slider(_("Pictures on the way"), 5, 12, 9, key=f"{P}_isteps"))
    if a == b:
        st.info(_("Choose two different samples."))
        return
    za, zb = torch.from_numpy(grid.z[a]), torch.from_numpy(grid.z[b])
    label = grid.label_of(a)
    if g.conditional and label != grid.label_of(b):
        st.caption(_("A and B were drawn for different classes; the class is not part of z, so "
                     "the whole way is drawn as {cls}.").format(cls=_(g.classes[label])))
    t = np.linspace(0, 1, steps)
    paths = {}
    for method in ("slerp", "lerp"):
        z = gen.interpolate(za, zb, steps, method).numpy().astype(np.float32)
        labels = None if label is None else np.full(steps, label)
        paths[method] = (z, draw(g.path, g.mtime, z, labels))
    captions = [_("A")] + [f"{v:.2f}" for v in t[1:-1]] + [_("B")]
    left, right = st.columns([3, 2])
    with left:
        # short titles (a projector's large font keeps them inside the chart), the why below each
        style.chart(figs.strip(paths["slerp"][1], captions, scale=figs.scale_for(g.size),
                               title=_("Spherical (slerp)")),
                    key=f"{P}_slerp", config={"displayModeBar": False})
        st.caption(_("Spherical (slerp): along the sphere where z usually lies"))
        style.chart(figs.strip(paths["lerp"][1], captions, scale=figs.scale_for(g.size),
                               title=_("Straight line (lerp)")),
                    key=f"{P}_lerp", config={"displayModeBar": False})
        st.caption(_("Straight line (lerp): through the middle of the sphere"))
    with right:
        norms = {_("slerp"): np.linalg.norm(paths["slerp"][0], axis=1),
                 _("lerp"): np.linalg.norm(paths["lerp"][0], axis=1)}
        style.chart(figs.norms_figure(t, norms, float(np.sqrt(g.latent))), key=f"{P}_norms",
                    config={"displayModeBar": False})
    st.caption(_("A random z of {d} numbers almost always has a length near sqrt({d}) = {r:.1f}: "
                 "the generator has only seen vectors on that thin shell. The straight line "
                 "between two of them cuts through the inside, where z is shorter than anything "
                 "it was trained on; the spherical path stays on the shell (White 2016, "
                 "\"Sampling Generative Networks\").").format(d=g.latent, r=np.sqrt(g.latent)))


# --- latent arithmetic


def arithmetic_view(g: Generator, grid: Grid) -> None:
    """mean(a) - mean(b) + mean(c) over chosen samples, decoded (Radford et al. 2016, Fig. 7)."""
    N = len(grid.z)
    st.markdown(_("Pick samples for **a**, **b** and **c**: the generator draws "
                  "**a − b + c**, computed on their vectors z. Averaging two or three samples "
                  "for each keeps what they share and cancels one picture's quirks (the DCGAN "
                  "paper's \"smiling woman − neutral woman + neutral man\")."))
    c = st.columns(3)
    picks = []
    for col, (name, default) in zip(c, (("a", [0]), ("b", [1]), ("c", [2]))):
        picks.append(col.multiselect(_("Samples for {name}").format(name=name), list(range(N)),
                                     default=[d for d in default if d < N], key=f"{P}_ar_{name}",
                                     max_selections=6))
    if not all(picks):
        st.info(_("Choose at least one sample for each of a, b and c."))
        return
    z = torch.from_numpy(grid.z)
    parts = [z[p].mean(0) for p in picks]
    result = gen.arithmetic(z, *picks)
    label = grid.label_of(picks[0][0])
    if g.conditional:
        label = st.selectbox(_("Class of the result"), range(len(g.classes)), index=label,
                             format_func=lambda k: _(g.classes[k]), key=f"{P}_ar_class")
    zs = torch.stack(parts + [result]).numpy().astype(np.float32)
    labels = None if label is None else np.full(4, label)
    images = draw(g.path, g.mtime, zs, labels)
    captions = [_("a"), _("− b"), _("+ c"), _("= a − b + c")]
    left, right = st.columns([3, 2])
    with left:
        style.chart(figs.strip(images, captions, scale=figs.scale_for(g.size, 112), highlight=(3,)), key=f"{P}_arithmetic",
                    config={"displayModeBar": False})
    right.caption(_("Each of the first three pictures is drawn from the mean of its samples' "
                    "vectors; the last from the sum. When the result looks like a mix of the "
                    "parts, the generator has laid out its space so that directions mean "
                    "something."))


# --- a VAE's latent map


@st.cache_data(max_entries=8, show_spinner=False)
def map_points(path: str, mtime: float, dataset: str, n: int = MAP_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's means (n, latent) of a fixed choice of n test images, and their classes."""
    model = load_model(path, mtime).model
    ds = loaders.dataset(dataset)
    idx = fixed_subset(len(ds.test_x), min(n, len(ds.test_x)))
    x, y = ds.test_x[idx], ds.test_y[idx]
    mu = gen.encode_means(model, x, y if model.config.conditional else None)
    return mu.numpy(), y.numpy()


def _map_clicked() -> None:
    """on_select of the latent map: the clicked point's coordinates into the two sliders."""
    event = st.session_state.get(f"{P}_map_chart") or {}
    points = (event.get("selection") or {}).get("points") or []
    xy = point_xy(points)
    if xy is not None:
        st.session_state[f"{P}_map_x"], st.session_state[f"{P}_map_y"] = xy


def point_xy(points: list[dict]) -> tuple[float, float] | None:
    """The (x, y) of the first clicked point of a plotly selection, rounded to the sliders'
    resolution; None when nothing was clicked."""
    for p in points:
        if p.get("x") is not None and p.get("y") is not None:
            return round(float(p["x"]), 2), round(float(p["y"]), 2)
    return None


def map_view(g: Generator) -> None:
    """The test set's encoder means on a plane, coloured by class; a click (or the sliders)
    decodes that point of the plane."""
    with st.spinner(_("Encoding {n} test images…").format(n=f"{MAP_POINTS:,}")):
        mu, y = map_points(g.path, g.mtime, g.dataset)
    plane = gen.LatentPlane(mu)
    xy = plane.project(mu)
    lo, hi = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    pad = 0.1 * (hi - lo)
    lo, hi = np.round(lo - pad, 2), np.round(hi + pad, 2)
    gx, gy = np.linspace(lo[0], hi[0], MAP_GRID), np.linspace(lo[1], hi[1], MAP_GRID)
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    kx, ky = f"{P}_map_x", f"{P}_map_y"
    for k, i in ((kx, 0), (ky, 1)):                     # a new model: start in the middle
        v = st.session_state.get(k)
        if v is None or not lo[i] <= v <= hi[i]:
            st.session_state[k] = round(float((lo[i] + hi[i]) / 2), 2)
    if plane.dims == 2:
        axes = (_("z₁"), _("z₂"))
        about = _("The latent has two dimensions: this is all of it.")
    else:
        axes = (_("first principal direction"), _("second principal direction"))
        about = _("The latent has {d} dimensions; this is the plane of its two principal "
                  "directions through the mean ({a:.0%} and {b:.0%} of the spread). A point "
                  "on the map decodes the point of that plane.").format(
            d=plane.dims, a=plane.explained[0], b=plane.explained[1])
    left, right = st.columns([3, 2])
    chosen = (st.session_state[kx], st.session_state[ky])
    with left:
        fig = figs.latent_map(xy, y, [_(c) for c in g.classes], grid, chosen, axes)
        style.chart(fig, key=f"{P}_map_chart", on_select=_map_clicked, selection_mode="points",
                    config={"displayModeBar": False})
        st.caption(_("Each dot is a test image, placed where the encoder puts it (its mean). "
                     "Click anywhere to decode that point.") + " " + about)
    with right:
        x = st.slider(_("Across"), float(lo[0]), float(hi[0]), key=kx, step=0.01)
        yv = st.slider(_("Up"), float(lo[1]), float(hi[1]), key=ky, step=0.01)
        label = None
        if g.conditional:
            label = st.selectbox(_("Class to decode with"), range(len(g.classes)),
                                 format_func=lambda k: _(g.classes[k]), key=f"{P}_map_class")
            st.caption(_("A conditional VAE is told the class, so its latent keeps the rest (the "
                         "style): the classes overlap on the map, and one point decodes as any class."))
        z = plane.lift(np.array([[x, yv]])).astype(np.float32)
        img = draw(g.path, g.mtime, z, None if label is None else np.array([label]))
        st.image(display(img[0], side=style.px(260)),
                 caption=_("decoded at ({x:.2f}, {y:.2f})").format(x=x, y=yv))
