"""Figures of generative models, for the Train page's live view and the Generate images page:
a grid of samples (numbered, a class per row for a conditional model), the diversity over a
run beside the classes the judge sees, a strip of images (an interpolation, an arithmetic),
the length of the latent along two paths, a VAE's latent map with a clickable plane, and the
discriminator's verdicts. Pure plotly over arrays (no Streamlit); words through i18n.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.introspect.features import tile
from karp_models.ui import style
from karp_models.ui.images import display

GAP = 4                                        # pixels between tiles


def _png(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")          # one PNG: far lighter than z=array
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _image_figure(rgb: np.ndarray) -> go.Figure:
    fig = go.Figure(go.Image(source=_png(rgb), hoverinfo="skip"))
    fig.update_xaxes(visible=False, range=[-0.5, rgb.shape[1] - 0.5])
    fig.update_yaxes(visible=False, range=[rgb.shape[0] - 0.5, -0.5], scaleanchor="x")
    return fig


def scale_for(size: int, px: int = 56) -> int:
    """The enlargement that shows a size x size image about px pixels wide (at least 2)."""
    return max(2, px // max(1, size))


def tiles(images: np.ndarray, scale: int) -> np.ndarray:
    """Images (N, C, H, W) uint8 as enlarged RGB tiles (N, H * scale, W * scale, 3)."""
    return np.stack([display(img, scale=scale) for img in images])


def sample_grid(images: np.ndarray, columns: int, *, scale: int = 2, title: str | None = None,
                row_labels: Sequence[str] | None = None, numbers: bool = False,
                highlight: Sequence[int] = ()) -> go.Figure:
    """A grid of samples (N, C, H, W) uint8, `columns` a row, on white.

    row_labels: a label left of each row (a conditional model's class); numbers: each sample's
    number in its top-left corner (to choose samples by); highlight: samples framed in orange.
    """
    N, _c, H, W = images.shape
    t = tiles(images, scale)
    th, tw = H * scale, W * scale
    b = max(2, scale)
    for i in highlight:                                      # an orange frame inside the tile
        if 0 <= i < N:
            t[i, :b], t[i, -b:], t[i, :, :b], t[i, :, -b:] = (255, 140, 0), (255, 140, 0), \
                (255, 140, 0), (255, 140, 0)
    grid = tile(t, columns, gap=GAP, fill=255)
    fig = _image_figure(grid)
    if numbers:
        for n in range(N):
            r, c = divmod(n, columns)
            fig.add_annotation(x=c * (tw + GAP) + 1, y=r * (th + GAP) + 1, text=str(n),
                               xanchor="left", yanchor="top", showarrow=False,
                               font=dict(size=13, color="white"), bgcolor="rgba(0,0,0,0.55)",
                               borderpad=1)
    left = 0
    if row_labels:
        for r, label in enumerate(row_labels):
            fig.add_annotation(x=0, xref="paper", xshift=-6, y=r * (th + GAP) + th / 2,
                               text=label, xanchor="right", showarrow=False,
                               font=dict(size=style.SMALL))
        left = 8 + 9 * max(len(s) for s in row_labels)
    rows = -(-N // columns)
    height = rows * (th + GAP) + (50 if title else 10)
    return style.layout(fig, height=max(120, height), title=title,
                        margin=dict(l=left, r=0, t=50 if title else 4, b=4))


def diversity_figure(history: Sequence[tuple[int, float, int | None]], predicted: Sequence[int] | None,
                     classes: Sequence[str], judged: bool) -> go.Figure:
    """Left column of the story of mode collapse: the samples' diversity at every preview of the
    run (1 = as varied as real images, dashed) and, when there is a judge, how many of the
    current samples it puts in each class.

    history: (step, diversity, distinct classes or None) oldest first; predicted: the judge's
    class per current sample (None without a judge); judged: diversity measured in the judge's
    features (else in pixels).
    """
    with_bars = predicted is not None
    fig = make_subplots(rows=2 if with_bars else 1, cols=1, vertical_spacing=0.2,
                        row_heights=[0.45, 0.55] if with_bars else None,
                        subplot_titles=[_("Diversity of the samples"),
                                        _("What the judge sees in them")][:2 if with_bars else 1])
    steps = [h[0] for h in history]
    div = [h[1] for h in history]
    fig.add_scatter(x=steps, y=div, mode="lines+markers" if len(steps) < 40 else "lines",
                    line=dict(color=style.BLUE, width=3), marker=dict(size=7),
                    name=_("diversity"), row=1, col=1,
                    hovertemplate=_("step %{x:,}: %{y:.2f}") + "<extra></extra>")
    fig.add_hline(y=1.0, line=dict(color=style.GREY, dash="dash", width=2), row=1, col=1,
                  annotation_text=_("real images"), annotation_position="bottom right",
                  annotation_font_size=style.SMALL)
    top = max([1.2] + [d * 1.1 for d in div])
    fig.update_yaxes(range=[0, top], title_text=_("vs real") if judged else _("vs real (pixels)"),
                     row=1, col=1)
    fig.update_xaxes(title_text=_("step"), rangemode="tozero", row=1, col=1)
    if with_bars:
        counts = np.bincount(np.asarray(predicted, int), minlength=len(classes))
        fig.add_bar(y=list(classes), x=counts.tolist(), orientation="h", row=2, col=1,
                    marker_color=[style.BLUE if c else style.MUTED for c in counts],
                    text=[str(c) if c else "" for c in counts], textposition="outside",
                    hovertemplate="%{y}: %{x}<extra></extra>", showlegend=False)
        fig.update_yaxes(autorange="reversed", row=2, col=1, tickfont=dict(size=style.SMALL))
        fig.update_xaxes(title_text=_("samples"), range=[0, max(counts.max(), 1) * 1.25],
                         row=2, col=1)
    fig.update_annotations(font_size=style.SIZE)
    style.layout(fig, height=560 if with_bars else 300, showlegend=False,
                 margin=dict(l=10, r=10, t=40, b=10))
    return fig


def strip(images: np.ndarray, captions: Sequence[str], *, scale: int = 3,
          title: str | None = None, highlight: Sequence[int] = ()) -> go.Figure:
    """Images (N, C, H, W) uint8 in one row, a caption under each (an interpolation's t, the
    terms of an arithmetic); highlight: images framed in orange."""
    N, _c, H, W = images.shape
    fig = sample_grid(images, N, scale=scale, highlight=highlight)
    tw = W * scale
    for n, text in enumerate(captions):
        fig.add_annotation(x=n * (tw + GAP) + tw / 2, y=H * scale + 4, text=text, yanchor="top",
                           showarrow=False, font=dict(size=style.SMALL))
    fig.update_yaxes(range=[H * scale + 34, -0.5])
    return style.layout(fig, height=H * scale + 46 + (50 if title else 0), title=title,
                        margin=dict(l=0, r=0, t=50 if title else 4, b=4))


def norms_figure(t: Sequence[float], norms: dict[str, Sequence[float]], typical: float) -> go.Figure:
    """The latent's length along each path (name -> norms at t), and the typical length of a
    latent the generator was trained on (sqrt of its dimension), dashed."""
    fig = go.Figure()
    colours = (style.BLUE, style.WRONG, style.GREEN)
    for (name, n), colour in zip(norms.items(), colours):
        fig.add_scatter(x=list(t), y=list(n), mode="lines+markers", name=name,
                        line=dict(color=colour, width=3), marker=dict(size=8))
    fig.add_scatter(x=[min(t), max(t)], y=[typical, typical], mode="lines", hoverinfo="skip",
                    line=dict(color=style.GREY, dash="dash", width=2),
                    name=_("typical length of a training latent"))
    fig.update_xaxes(title_text=_("fraction of the way from A to B"))
    fig.update_yaxes(title_text=_("length of z"), rangemode="tozero")
    style.layout(fig, height=400, title=_("How long is z along the way?"),
                 legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
                 margin=dict(l=10, r=10, t=50, b=110))
    return style.big_axes(fig)


def latent_map(xy: np.ndarray, labels: np.ndarray, classes: Sequence[str], grid: np.ndarray,
               chosen: tuple[float, float] | None, axes: tuple[str, str]) -> go.Figure:
    """The test set's encoder means on a plane, coloured by class, over an invisible grid of
    clickable points (plotly's click events fire on points only, so a click anywhere lands on a
    grid point); `chosen` is marked with a black cross.

    xy: (N, 2); labels: (N,); grid: (G, 2) the clickable points, customdata = their (x, y).
    """
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=grid[:, 0], y=grid[:, 1], mode="markers", showlegend=False,
                               marker=dict(size=12, color="rgba(0,0,0,0)"), customdata=grid,
                               hovertemplate=_("decode (%{x:.2f}, %{y:.2f})") + "<extra></extra>"))
    for k, name in enumerate(classes):
        m = labels == k
        if not m.any():
            continue
        fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
                                   marker=dict(size=5, color=style.CATEGORY[k % len(style.CATEGORY)],
                                               opacity=0.6),
                                   customdata=xy[m], hovertemplate=name + "<extra></extra>"))
    if chosen is not None:
        fig.add_scatter(x=[chosen[0]], y=[chosen[1]], mode="markers", showlegend=False,
                        marker=dict(symbol="x-thin", size=26, line=dict(width=5, color="black")),
                        hoverinfo="skip")
    fig.update_xaxes(title_text=axes[0], range=[grid[:, 0].min(), grid[:, 0].max()])
    fig.update_yaxes(title_text=axes[1], range=[grid[:, 1].min(), grid[:, 1].max()])
    style.layout(fig, height=640, clickmode="event+select", dragmode=False, hovermode="closest",
                 legend=dict(itemsizing="constant", font=dict(size=style.SMALL), orientation="h",
                             yref="container", yanchor="bottom", y=0, x=0),
                 margin=dict(l=10, r=10, t=10, b=120))
    return style.big_axes(fig)


def verdict_figure(rows: Sequence[tuple[str, float]], probability: bool, highlight: int = 0) -> go.Figure:
    """Horizontal bars of the discriminator's verdicts, `rows` = (what, value); the row
    `highlight` (the person's image) in the accent colour, the references muted. probability:
    values are P(real) in [0, 1] (DCGAN's loss), else critic scores."""
    names = [r[0] for r in rows]
    vals = [r[1] for r in rows]
    fig = go.Figure(go.Bar(
        y=names, x=vals, orientation="h",
        marker_color=[style.ACCENT if i == highlight else style.MUTED for i in range(len(rows))],
        text=[f"{v:.0%}" if probability else f"{v:.2f}" for v in vals], textposition="auto",
        insidetextfont=dict(color="white"), hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed")
    if probability:
        fig.add_vline(x=0.5, line=dict(color=style.GREY, dash="dash", width=2))
        fig.update_xaxes(range=[0, 1.12], tickformat=".0%",
                         title_text=_("the discriminator's probability that the image is real"))
    else:
        span = max(abs(v) for v in vals) or 1.0
        fig.update_xaxes(range=[min(0, min(vals)) - 0.25 * span, max(0, max(vals)) + 0.25 * span],
                         title_text=_("the critic's score (higher: more real)"))
    style.layout(fig, height=90 + 44 * len(rows), margin=dict(l=10, r=10, t=10, b=10))
    return style.big_axes(fig)


def timelapse(snapshots: Sequence[tuple[int, np.ndarray]], columns: int,
              row_labels: Sequence[str] | None, step_word: str, play: str, pause: str,
              scale: int | None = None) -> go.Figure:
    """The grids kept over a run [(step, images (N, C, H, W) uint8)] as one animated figure: a
    slider over the steps and Play / Pause buttons, all in the browser (no rerun per frame).
    Starts at the last grid (the trained model); Play runs from the first."""
    scale = scale or scale_for(snapshots[-1][1].shape[-1])
    pngs = [_png(tile(tiles(images, scale), columns, gap=GAP, fill=255)) for _s, images in snapshots]
    last = len(snapshots) - 1
    fig = sample_grid(snapshots[last][1], columns, scale=scale, row_labels=row_labels)
    fig.frames = [go.Frame(data=[go.Image(source=src)], name=str(step), traces=[0])
                  for (step, _i), src in zip(snapshots, pngs)]
    go_to = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    fig.update_layout(
        sliders=[dict(active=last, pad=dict(t=10, b=0), len=1.0, x=0, y=0, yanchor="top",
                      currentvalue=dict(prefix=f"{step_word} ", font=dict(size=style.SIZE)),
                      font=dict(size=style.SMALL),
                      steps=[dict(method="animate", label=f"{step:,}", args=[[str(step)], go_to])
                             for step, _i in snapshots])],
        updatemenus=[dict(type="buttons", direction="left", x=0, y=1.02, xanchor="left",
                          yanchor="bottom", pad=dict(r=8, t=0), font=dict(size=style.SMALL),
                          buttons=[dict(label=f"▶ {play}", method="animate",
                                        args=[None, dict(mode="immediate", fromcurrent=False,
                                                         frame=dict(duration=350, redraw=True),
                                                         transition=dict(duration=0))]),
                                   dict(label=f"❚❚ {pause}", method="animate",
                                        args=[[None], go_to])])])
    h = fig.layout.height
    fig.update_layout(height=h + 150, margin=dict(t=60, b=110))
    return fig
