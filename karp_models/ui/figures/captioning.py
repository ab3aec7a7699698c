"""Figures of the Image captioning page: the scene with one word's attention map over it (and the
boxes of the items that word names), and the small multiples of every word's map. Maps are drawn as Show, Attend and Tell's figures draw them: the g x g grid
upsampled smoothly over the grey image.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.introspect.vit import overlay
from karp_models.ui import style
from karp_models.ui.images import display, grey, upscale

SCALE = 4                  # a 64-pixel scene is drawn 256 pixels wide, so the maps are smooth
PER_ROW = 10               # small multiples per row, at most
PAGE_WIDTH = 930           # the main column of a 1280-pixel screen beside the sidebar


def _layer(image: np.ndarray, att: np.ndarray | None, alpha: float) -> np.ndarray:
    """(H', W', 3) uint8: the image enlarged SCALE times, with the map `att` (g, g) over it."""
    big = upscale(grey(image), SCALE)
    return display(big) if att is None else overlay(big, att, alpha=alpha, vmax=float(att.max()) or None)


def _boxes(fig: go.Figure, boxes: np.ndarray | None, row: int | None = None, col: int | None = None) -> None:
    """Outline item boxes (K, 4) in image pixels (x0, y0, x1, y1, end exclusive)."""
    for x0, y0, x1, y1 in (boxes if boxes is not None else []):
        fig.add_shape(type="rect", x0=x0 * SCALE - 0.5, y0=y0 * SCALE - 0.5, x1=x1 * SCALE - 0.5,
                      y1=y1 * SCALE - 0.5, line=dict(color=style.RIGHT, width=3), row=row, col=col)


def word_figure(image: np.ndarray, att: np.ndarray | None, *, boxes: np.ndarray | None = None,
                title: str | None = None, alpha: float = 0.6, height: int = 330) -> go.Figure:
    """The scene (C, H, W) or (H, W) in [0, 1] with one word's attention map (g, g) over it
    (None: the plain image), and the boxes of the items the word names outlined in green."""
    rgb = _layer(image, att, alpha)
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    _boxes(fig, boxes)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return style.layout(fig, height=height, title=title,
                        margin=dict(l=0, r=0, t=40 if title else 0, b=0))


def strip_figure(image: np.ndarray, att: np.ndarray, labels: Sequence[str], *,
                 selected: int | None = None, alpha: float = 0.6) -> go.Figure:
    """Small multiples: every step's map (T, g, g) over the image, in one row (two rows, evenly
    filled, past PER_ROW), each titled by its label (the word and its probability, on two lines
    joined by <br>, so ten fit across a projector); the selected step's title is marked ▶."""
    T = len(labels)
    rows = -(-max(T, 1) // PER_ROW)
    cols = -(-max(T, 1) // rows)
    titles = [("▶ " if t == selected else "") + lab for t, lab in enumerate(labels)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles + [""] * (rows * cols - T),
                        horizontal_spacing=0.012, vertical_spacing=0.22 / rows)
    for t in range(T):
        fig.add_trace(go.Image(z=_layer(image, att[t], alpha), hoverinfo="skip"),
                      row=t // cols + 1, col=t % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font=style.SMALL_FONT)
    side = PAGE_WIDTH // cols                             # each small map's side on a projector
    return style.layout(fig, height=rows * (min(side, 200) + 60), margin=dict(l=8, r=8, t=48, b=0))
