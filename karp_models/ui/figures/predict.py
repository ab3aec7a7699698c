"""Figures of the Predict page: top-k bars, first-layer filters, all feature maps of a layer, one
channel, and the objective of activation maximisation. The maths is in introspect.features.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from karp_models.i18n import _
from karp_models.introspect import features as feat
from karp_models.ui import style


def topk_figure(top: list[tuple[str, float]]) -> go.Figure:
    """Horizontal bars of (class, probability), most probable first and on top, in the accent
    colour; the probability written beside each bar."""
    names = [n for n, _ in top][::-1]
    vals = [p for _, p in top][::-1]
    colors = [style.MUTED] * (len(top) - 1) + [style.ACCENT]
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", marker_color=colors,
                           text=[f"{v:.1%}" for v in vals], textposition="outside",
                           textfont=dict(size=style.SIZE + 2), cliponaxis=False))
    return style.layout(fig, height=70 + 48 * len(top), margin=dict(l=10, r=60, t=10, b=30),
                        xaxis=dict(range=[0, 1.12], tickformat=".0%", title=_("probability")),
                        yaxis=dict(tickfont=dict(size=style.SIZE + 2), type="category"))


def filters_figure(w: np.ndarray, scale: float | np.ndarray | None = None,
                   height: int | None = None) -> go.Figure:
    """First-layer filters (O, C, kh, kw): blue negative, white zero, red positive weights
    (grayscale input), or the filters as colour images (RGB input). One square per filter,
    numbered by hover. scale: as features.filter_images (default each filter's own max |w|)."""
    imgs = feat.filter_images(w, scale)                               # (O, kh, kw[, 3]) in [0, 1]
    O, kh, kw = imgs.shape[:3]
    cols = min(O, 8 if O <= 64 else 16)
    gap = max(1, kh // 5)
    idx = feat.tile_index(O, cols, kh, kw, gap)
    if imgs.ndim == 4:
        grid = feat.tile((imgs * 255).astype(np.uint8), cols, gap, fill=255)
        fig = go.Figure(go.Image(z=grid, customdata=idx,
                                 hovertemplate=_("filter %{customdata}") + "<extra></extra>"))
    else:
        grid = feat.tile((imgs * 2 - 1).astype(np.float32), cols, gap)  # NaN gaps
        fig = go.Figure(go.Heatmap(z=grid, zmin=-1, zmax=1, colorscale=style.SIGNED_SCALE,
                                   customdata=idx,
                                   hovertemplate=_("filter %{customdata}: %{z:.2f}") + "<extra></extra>",
                                   colorbar=dict(title=_("weight"), tickvals=[-1, 0, 1],
                                                 ticktext=["−max", "0", "+max"])))
        fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    H, W = grid.shape[:2]
    return style.layout(fig, height=height or int(np.clip(900 * H / W, 200, 800)),
                        margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white")


def maps_figure(maps: np.ndarray) -> go.Figure:
    """All channels (C, H, W) of one layer as a grid (each scaled to its own range), channel
    number on hover."""
    grid, cols = feat.map_grid(maps)
    C, H, W = maps.shape
    rows = -(-C // cols)
    fig = go.Figure(go.Heatmap(z=grid, colorscale=style.HEAT_SCALE, showscale=False,
                               customdata=feat.tile_index(C, cols, H, W),
                               hovertemplate=_("channel %{customdata}") + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    return style.layout(fig, height=int(min(760, max(320, 720 * rows / cols))),
                        margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white")


def channel_figure(m: np.ndarray, title: str) -> go.Figure:
    """One channel's map (H, W) as a square heatmap, value on hover."""
    fig = go.Figure(go.Heatmap(z=m, colorscale=style.HEAT_SCALE,
                               hovertemplate=_("row %{y}, column %{x}: %{z:.3f}") + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    return style.layout(fig, height=430, title=title)


def objective_figure(values: list[float], what: str | None = None,
                     reference: tuple[str, float] | None = None) -> go.Figure:
    """The activation-maximisation objective at every step (`what` it measures, on the y axis),
    with an optional dashed line at a reference level, e.g. ("your image", 0.27)."""
    what = what or _("objective")
    fig = go.Figure(go.Scatter(y=values, mode="lines", line=dict(width=3, color=style.ACCENT),
                               name=what, hovertemplate=_("step %{x}: %{y:.3f}") + "<extra></extra>"))
    if reference is not None:
        fig.add_hline(y=reference[1], line=dict(dash="dash", color=style.GREY, width=2),
                      annotation_text=f"{reference[0]}: {reference[1]:.3f}",
                      annotation_font=style.SMALL_FONT, annotation_position="bottom right")
    fig.update_xaxes(title_text=_("step"))
    fig.update_yaxes(title_text=what)
    return style.big_axes(style.layout(fig, height=300, margin=dict(l=10, r=10, t=10, b=10)))


def timelapse_figure(steps: list[int], series: dict[str, list[float]], current: int) -> go.Figure:
    """Values per snapshot step (name -> one per step, in [-1, 1] or nan, drawn as gaps) as lines
    with markers, and a dashed vertical line at the `current` step."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=steps, y=[None if v != v else v for v in values], name=name,
                                 mode="lines+markers", line=dict(width=3, color=style.CATEGORY[i]),
                                 marker=dict(size=9),
                                 hovertemplate=_("step %{x}: %{y:.2f}") + "<extra>" + name + "</extra>"))
    fig.add_vline(x=current, line=dict(dash="dash", color=style.GREY, width=2))
    fig.update_xaxes(title_text=_("training step"))
    low = min([0.0] + [v for vs in series.values() for v in vs if v == v])   # a correlation may be < 0
    fig.update_yaxes(range=[low - 0.05, 1.05])
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return style.big_axes(style.layout(fig, height=320, margin=dict(l=10, r=10, t=40, b=10)))
