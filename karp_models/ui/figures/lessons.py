"""Figures of the lesson player: an image to click on (a grid of invisible points over it), Grad-CAM over the
image with the learner's guess and the best region drawn, a class's answers as bars or as clicks on the image,
a short run's loss curve, and the recipe checks' per-layer update ratios. Pure: arrays in, plotly figures out.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from karp_models.i18n import _
from karp_models.ui import style


def _image(img: np.ndarray) -> go.Heatmap:
    """A grey (H, W) image in [0, 1] as a heatmap, row 0 on top."""
    return go.Heatmap(z=img, colorscale="gray", showscale=False, hoverinfo="skip", zmin=0, zmax=1)


def _frame(fig: go.Figure, H: int, W: int, height: int) -> go.Figure:
    fig.update_xaxes(visible=False, range=[-0.5, W - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[H - 0.5, -0.5], scaleanchor="x", constrain="domain")
    return style.layout(fig, height=height, margin=dict(l=0, r=0, t=0, b=0), clickmode="event+select",
                        dragmode=False, showlegend=False)


def cell_centres(H: int, W: int, grid: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """x, y (pixel coordinates) of every grid cell's centre, row by row, and (row, col) of each."""
    ys = (np.arange(grid) + 0.5) * H / grid - 0.5
    xs = (np.arange(grid) + 0.5) * W / grid - 0.5
    rc = [[r, c] for r in range(grid) for c in range(grid)]
    return np.array([xs[c] for _, c in rc]), np.array([ys[r] for r, _ in rc]), rc


def click_image(img: np.ndarray, grid: int, picked: tuple[int, int] | None = None, span: int = 3,
                height: int = 300) -> go.Figure:
    """The image with a grid x grid of clickable points (nearly invisible markers that carry their (row, col)
    as customdata) and, once picked, the span x span region the guess covers."""
    H, W = img.shape
    x, y, rc = cell_centres(H, W, grid)
    fig = go.Figure(_image(img))
    fig.add_trace(go.Scatter(x=x, y=y, mode="markers", customdata=rc, hoverinfo="none",
                             marker=dict(size=max(8, height // grid - 6), color="rgba(255,200,0,0.08)",
                                         symbol="square", line=dict(width=1, color="rgba(255,200,0,0.35)")),
                             selected=dict(marker=dict(color="rgba(255,200,0,0.6)")),
                             unselected=dict(marker=dict(opacity=1))))
    if picked is not None:
        _box(fig, picked, H, W, grid, span, "#ffb000")
    return _frame(fig, H, W, height)


def _box(fig: go.Figure, cell: tuple[int, int], H: int, W: int, grid: int, span: int, colour: str,
         dash: str = "solid") -> None:
    h, ch, cw = span // 2, H / grid, W / grid
    r0, c0 = max(0, cell[0] - h), max(0, cell[1] - h)
    r1, c1 = min(grid, cell[0] + h + 1), min(grid, cell[1] + h + 1)
    fig.add_shape(type="rect", x0=c0 * cw - 0.5, x1=c1 * cw - 0.5, y0=r0 * ch - 0.5, y1=r1 * ch - 0.5,
                  line=dict(color=colour, width=4, dash=dash))


def cam_overlay(img: np.ndarray, cam: np.ndarray, guess: tuple[int, int], best: tuple[int, int], grid: int,
                span: int = 3, height: int = 300) -> go.Figure:
    """Grad-CAM (H, W, normalised to [0, 1]) in red over the grey image, the guess (orange, solid) and the
    region where the map lies most (green, dashed)."""
    H, W = img.shape
    a = 0.65 * np.clip(cam / (cam.max() + 1e-12), 0, 1)                # the map as red over the picture
    rgb = np.stack([img * (1 - a) + a, img * (1 - a), img * (1 - a)], -1) * 255     # (H, W, 3)
    fig = go.Figure(go.Image(z=rgb.astype(np.uint8), hoverinfo="skip"))
    _box(fig, guess, H, W, grid, span, "#ffb000")
    _box(fig, best, H, W, grid, span, "#22c55e", dash="dash")
    return _frame(fig, H, W, height)


def tally_bars(counts: Counter, labels: Sequence[str] | None = None, right: str | None = None,
               height: int = 260) -> go.Figure:
    """How many gave each answer (every label in `labels` shown, also at 0); the right answer in green."""
    keys = list(labels) if labels is not None else [k for k, _ in counts.most_common()]
    keys += [k for k in counts if k not in keys]
    colours = ["#22c55e" if k == right else "#6b7280" for k in keys]
    fig = go.Figure(go.Bar(x=[str(k) for k in keys], y=[counts.get(k, 0) for k in keys], marker_color=colours,
                           text=[counts.get(k, 0) for k in keys], textposition="outside", cliponaxis=False))
    fig.update_yaxes(title=_("answers"), rangemode="tozero", dtick=1 if max(counts.values(), default=0) < 8 else None)
    fig.update_xaxes(type="category")
    return style.layout(fig, height=height, margin=dict(l=50, r=10, t=20, b=40))


def click_tally(img: np.ndarray, counts: Counter, grid: int, height: int = 300) -> go.Figure:
    """A class's clicks ('row,col' -> count) as circles over the image, larger for more."""
    H, W = img.shape
    x, y, rc = cell_centres(H, W, grid)
    n = np.array([counts.get(f"{r},{c}", 0) for r, c in rc])
    keep = n > 0
    fig = go.Figure(_image(img))
    fig.add_trace(go.Scatter(x=x[keep], y=y[keep], mode="markers+text", text=n[keep], hoverinfo="skip",
                             textfont=dict(color="black", size=style.SIZE),
                             marker=dict(size=14 + 30 * n[keep] / max(1, n.max()), color="rgba(255,176,0,0.75)")))
    return _frame(fig, H, W, height)


def loss_curve(losses: Sequence[float], title: str | None = None, height: int = 240) -> go.Figure:
    """The training loss at each step; steps after a blow-up (inf or NaN) are left out and marked."""
    y = np.asarray(losses, dtype=float)
    ok = np.isfinite(y)
    fig = go.Figure(go.Scatter(x=np.arange(1, len(y) + 1)[ok], y=y[ok], mode="lines+markers",
                               line=dict(width=3), marker=dict(size=5)))
    if not ok.all():
        fig.add_annotation(x=int(np.argmin(ok)) + 1, y=float(y[ok].max()) if ok.any() else 0,
                           text=_("the loss blew up"), showarrow=True, font=dict(color="#dc2626", size=style.SIZE))
    fig.update_xaxes(title=_("step"))
    fig.update_yaxes(title=_("training loss"), exponentformat="power",
                     type="log" if ok.any() and y[ok].max() / max(y[ok].min(), 1e-9) > 50 else None)
    return style.layout(fig, height=height, title=title, margin=dict(l=60, r=10, t=40 if title else 10, b=45))


def update_ratios(names: Sequence[str], ratios: np.ndarray, good: float = 1e-3, height: int = 340) -> go.Figure:
    """Update/weight ratio (steps, layers) over the steps, one line per layer (named without '.weight'), log
    scale, the suggested ratio as a dashed line; the legend below the plot, so a narrow column keeps its width."""
    r = np.asarray(ratios, dtype=float)
    x = np.arange(1, len(r) + 1)
    fig = go.Figure([go.Scatter(x=x, y=r[:, j], mode="lines", name=n.removesuffix(".weight"))
                     for j, n in enumerate(names)])
    fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[good, good], mode="lines", name=_("about 1e-3 (Karpathy)"),
                             line=dict(dash="dash", color="#6b7280", width=3)))
    fig.update_xaxes(title=_("step"))
    fig.update_yaxes(title=_("update / weight"), type="log", exponentformat="power")
    return style.layout(fig, height=height, margin=dict(l=60, r=10, t=10, b=10),
                        legend=dict(font=dict(size=style.SMALL), orientation="h", y=-0.25, yanchor="top"))
