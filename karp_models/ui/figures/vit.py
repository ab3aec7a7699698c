"""Figures of the ViT attention page: the prediction, the CLS token's attention per layer and
head as a grid of overlays, and attention rollout beside the image."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.introspect.vit import ViTAttention, overlay
from karp_models.ui import style
from karp_models.ui.images import display, upscale

SCALE = 4  # image pixels are drawn SCALE x SCALE so the overlays are smooth, not blocky


def prediction_figure(probs: np.ndarray, classes: Sequence[str], label: int | None = None,
                      top: int = 5) -> go.Figure:
    """The `top` classes as horizontal bars in %, the true class (when known) in green."""
    order = np.argsort(-probs)[:top][::-1]
    names = [classes[i] if i < len(classes) else str(i) for i in order]
    colors = [style.GREEN if label is not None and i == label else style.BLUE for i in order]
    fig = go.Figure(go.Bar(x=[100 * probs[i] for i in order], y=names, orientation="h",
                           marker_color=colors, text=[f"{100 * probs[i]:.1f}%" for i in order],
                           textposition="auto"))
    fig.update_xaxes(range=[0, 100], tickvals=[0, 50, 100], title_text=_("probability (%)"),
                     tickfont=style.SMALL_FONT)
    fig.update_yaxes(tickfont=style.FONT)
    return style.layout(fig, height=80 + 44 * len(order), margin=dict(l=10, r=25, t=10, b=10))


def _image(rgb: np.ndarray) -> go.Image:
    return go.Image(z=rgb, hoverinfo="skip")


def head_grid_figure(image: np.ndarray, att: ViTAttention, *, smooth: bool = True,
                     shared_scale: bool = False, alpha: float = 0.6) -> go.Figure:
    """Rows are layers (first at the top), columns heads: each cell is the CLS token's attention
    over the patches on the image. Titles say how much the CLS token kept for itself.

    Args:
        image: (H, W) grey in [0, 1]. smooth: bilinear upsampling of the patch grid (else blocks).
        shared_scale: one colour scale for every map (else each map is scaled to its own maximum).
    """
    L, Hh = att.n_layer, att.n_head
    big = upscale(image, SCALE)
    vmax = float(att.cls_maps.max()) if shared_scale else None
    words = _("L{layer} H{head}: CLS keeps {share:.0%}")
    titles = [words.format(layer=l, head=h, share=att.cls_self[l, h]) for l in range(L) for h in range(Hh)]
    fig = make_subplots(rows=L, cols=Hh, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.06)
    for l in range(L):
        for h in range(Hh):
            rgb = overlay(big, att.cls_maps[l, h], alpha=alpha, vmax=vmax,
                          mode="bilinear" if smooth else "nearest")
            fig.add_trace(_image(rgb), row=l + 1, col=h + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font=style.SMALL_FONT)
    return style.layout(fig, height=230 * L + 40, margin=dict(l=10, r=10, t=40, b=10))


def rollout_figure(image: np.ndarray, att: ViTAttention, *, smooth: bool = True,
                   alpha: float = 0.6) -> go.Figure:
    """Three panels: the input (H, W) grey in [0, 1], rollout over all layers, and the last
    layer's heads averaged (titles short enough for a third of a 1280-pixel page)."""
    big = upscale(image, SCALE)
    mode = "bilinear" if smooth else "nearest"
    panels = [
        (_("input"), display(big)),
        (_("rollout, {n} layers").format(n=att.n_layer), overlay(big, att.rollout_map, alpha=alpha, mode=mode)),
        (_("last layer"), overlay(big, att.cls_maps[-1].mean(0), alpha=alpha, mode=mode)),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for t, _rgb in panels], horizontal_spacing=0.03)
    for i, (_title, rgb) in enumerate(panels):
        fig.add_trace(_image(rgb), row=1, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font=style.SMALL_FONT)
    return style.layout(fig, height=300, margin=dict(l=0, r=0, t=40, b=0))
