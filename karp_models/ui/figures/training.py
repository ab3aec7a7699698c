"""Figures of the Train page: loss / accuracy / learning-rate curves of several runs overlaid
(downsampled), and the grid of test images framed by the model's current guess.

The builders take plain sequences (a `Curve` per run), not job or record classes, so the job
queue can change without touching them. Downsampling keeps every trace at most MAX_POINTS
points, so a 20,000-step run redraws as fast as a 200-step one.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from karp_models.i18n import N_, _
from karp_models.introspect.features import tile
from karp_models.ui import style
from karp_models.ui.images import display

MAX_POINTS = 500
COLS = 4                                       # images per row of the prediction grid
TITLES = {"loss": (N_("Loss"), N_("cross-entropy (nats)")), "accuracy": (N_("Validation accuracy"), "%"),
          "lr": (N_("Learning rate"), "lr")}                                  # shown with _()


@dataclass(frozen=True)
class Curve:
    """One run's series. val_*: at evaluations only (val_accuracy a fraction, or None)."""

    key: str                                   # legend group: the run's id
    label: str
    color: str
    steps: Sequence[int]
    train_loss: Sequence[float]
    lr: Sequence[float]
    val_steps: Sequence[int] = ()
    val_loss: Sequence[float] = ()
    val_accuracy: Sequence[float | None] = ()


def downsample(x: Sequence[float], y: Sequence[float], max_points: int = MAX_POINTS
               ) -> tuple[list[float], list[float]]:
    """At most max_points evenly spaced points, always keeping the first and the last."""
    n = len(x)
    if n <= max_points:
        return list(x), list(y)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return [x[i] for i in idx], [y[i] for i in idx]


def run_colors(ids: Sequence[str]) -> dict[str, str]:
    """A fixed colour per run id, in the order the runs were started."""
    return {j: style.RUNS[i % len(style.RUNS)] for i, j in enumerate(ids)}


def _name(run: str, what: str) -> str:
    return " · ".join(p for p in (run, what) if p) or _("value")


def curves_figure(curves: Sequence[Curve], metric: str) -> go.Figure:
    """One chart of `metric` ('loss' | 'accuracy' | 'lr') with every run overlaid.

    loss: training (line) and validation (dashed, markers); accuracy: validation accuracy in %;
    lr: the learning rate the optimizer used. Only the loss chart has a legend (it names the
    runs; their colours match across charts). Trace names carry the run's label when there
    are several runs.
    """
    fig = go.Figure()
    many = len(curves) > 1
    for c in curves:
        run = c.label if many else ""
        if metric in ("loss", "lr"):
            x, y = downsample(c.steps, c.train_loss if metric == "loss" else c.lr)
            fig.add_scatter(x=x, y=y, mode="lines" if len(x) > 1 else "markers",  # the first point shows
                            line=dict(color=c.color, width=3), marker=dict(size=9),
                            name=_name(run, _("training") if metric == "loss" else ""),
                            legendgroup=c.key)
        if metric in ("loss", "accuracy"):
            vals = (c.val_loss if metric == "loss" else
                    [None if a is None else 100 * a for a in c.val_accuracy])
            vx, vy = downsample(c.val_steps, vals)
            fig.add_scatter(x=vx, y=vy, mode="lines+markers", marker=dict(size=9),
                            line=dict(color=c.color, width=3,
                                      dash="dash" if metric == "loss" else "solid"),
                            name=_name(run, _("validation") if metric == "loss" else ""),
                            legendgroup=c.key)
    title, ytitle = TITLES[metric]
    rows = -(-len(fig.data) // 2) if metric == "loss" else 0  # legend rows under the axis, two a row
    style.layout(fig, height=(260 if metric == "lr" else 380) + 28 * rows, title=_(title),
                 hovermode="x unified", uirevision="train",  # keep the zoom while points arrive
                 legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0))
    if rows:  # the legend sits in the bottom margin, below the axis title, never over it
        fig.update_layout(margin=dict(b=56 + 28 * rows))
    fig.update_xaxes(title_text=_("step"), rangemode="tozero")
    fig.update_yaxes(title_text=_(ytitle))
    if metric == "lr":
        top = max((v for c in curves for v in c.lr if v is not None), default=0.0)
        fig.update_yaxes(exponentformat="e", range=[0, top * 1.1] if top > 0 else None)  # a constant
        # rate is a line at its height, not at the middle of plotly's default +-1 range
    if metric != "loss":
        fig.update_layout(showlegend=False)
    return style.big_axes(fig)


def _gap(tile_h: int) -> int:
    return max(8, int(tile_h * 0.55))


def montage(images: np.ndarray, right: Sequence[bool], scale: int, border: int) -> np.ndarray:
    """Images (N, C, H, W) uint8 enlarged `scale` times, each framed green (right) or red
    (wrong), COLS per row on white with room for a label under each row: (rows, cols, 3) uint8."""
    frames = []
    for img, ok in zip(images, right):
        t = np.pad(display(img, scale=scale), ((border, border), (border, border), (0, 0)))
        t[:border], t[-border:], t[:, :border], t[:, -border:] = (_rgb(ok),) * 4
        frames.append(t)
    th = frames[0].shape[0]
    grid = tile(np.stack(frames), COLS, gap=(_gap(th), 6), fill=255)
    return np.pad(grid, ((0, _gap(th)), (0, 0), (0, 0)), constant_values=255)  # last row's labels


def _rgb(ok: bool) -> tuple[int, int, int]:
    c = style.RIGHT if ok else style.WRONG
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def prediction_grid(images: np.ndarray, labels: Sequence[int], preds: Sequence[int],
                    classes: Sequence[str], step: int) -> go.Figure:
    """The test images with the model's guess under each: a green frame and ✓ when right, red
    and ✗ (with the true class) when wrong; the title counts the right ones.

    Args:
        images: (N, C, H, W) uint8; labels, preds: (N,) class indices.
    """
    N, H, W = images.shape[0], images.shape[2], images.shape[3]
    scale = max(1, 96 // H)
    border = max(3, scale * H // 20)
    right = [p == y for p, y in zip(preds, labels)]
    grid = montage(images, right, scale, border)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")           # one PNG: far lighter than z=array
    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
                             hoverinfo="skip"))
    th, tw = H * scale + 2 * border, W * scale + 2 * border
    gap = _gap(th)
    for k, (y, pred) in enumerate(zip(labels, preds)):
        r, c = divmod(k, COLS)
        text = f"✓ {classes[pred]}" if right[k] else _("✗ {pred}<br>(is {truth})").format(pred=classes[pred],
                                                                                         truth=classes[y])
        fig.add_annotation(x=c * (tw + 6) + tw / 2, y=r * (th + gap) + th + gap / 2, text=text,
                           showarrow=False, font=dict(size=style.SMALL, color=style.RIGHT_TEXT
                                                      if right[k] else style.WRONG_TEXT))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return style.layout(fig, height=640, margin=dict(l=0, r=0, t=50, b=0),
                        title=_("Test images at step {step:,}: {right} of {n} right").format(step=step, right=sum(right),
                                                                                        n=N))


# --- a task's named curves (previews.Chart: a GAN's two losses, a VAE's ELBO terms, ...)

NAME_COLORS = (style.BLUE, style.WRONG, style.GREEN, "#9467bd")   # one run: a colour per name
NAME_DASH = ("solid", "dot", "dashdot", "longdash")               # several runs: a dash per name


@dataclass(frozen=True)
class Scalars:
    """One run's named values: at the training records (values: name -> one value or None per
    step of `steps`) and at the evaluations (val_values: name -> one per val_steps); floor: the
    chart's reference line from the final evaluation, when there is one."""

    key: str
    label: str
    color: str
    steps: Sequence[int]
    values: dict[str, Sequence[float | None]]
    val_steps: Sequence[int] = ()
    val_values: dict[str, Sequence[float | None]] = None  # type: ignore[assignment]
    floor: float | None = None


def scalars_figure(runs: Sequence[Scalars], title: str, names: Sequence[str], labels: Sequence[str],
                   axis: str, *, train: bool = True, val: bool = True, log: bool = False,
                   floor_label: str = "") -> go.Figure:
    """One chart of named values over steps, every run overlaid (downsampled like the loss).

    With one run each name has its own colour; with several, each run its colour and each name
    its dash. Training values are lines; evaluations' values (val) are markers joined by a
    dashed line (a solid one when there are no training values); a run's floor is a dotted
    horizontal line. labels: the names as the legend says them (translated by the caller)."""
    fig = go.Figure()
    many = len(runs) > 1
    for r in runs:
        for i, (name, label) in enumerate(zip(names, labels)):
            color = r.color if many else NAME_COLORS[i % len(NAME_COLORS)]
            dash = NAME_DASH[i % len(NAME_DASH)] if many else "solid"
            if train:
                pts = [(s, v) for s, v in zip(r.steps, r.values.get(name, ())) if v is not None]
                if pts:
                    x, y = downsample([p[0] for p in pts], [p[1] for p in pts])
                    fig.add_scatter(x=x, y=y, mode="lines" if len(x) > 1 else "markers",
                                    line=dict(color=color, width=3, dash=dash), marker=dict(size=9),
                                    name=_name(r.label if many else "", label), legendgroup=r.key)
            if val:
                pts = [(s, v) for s, v in zip(r.val_steps, (r.val_values or {}).get(name, ()))
                       if v is not None]
                if pts:
                    x, y = downsample([p[0] for p in pts], [p[1] for p in pts])
                    fig.add_scatter(x=x, y=y, mode="lines+markers", marker=dict(size=9),
                                    line=dict(color=color, width=3 if not train else 2,
                                              dash="dash" if train else dash),
                                    name=_name(r.label if many else "",
                                               _("{name}, held out").format(name=label) if train
                                               else label),
                                    legendgroup=r.key)
        if r.floor is not None:
            fig.add_hline(y=r.floor, line=dict(color=r.color if many else style.GREY, dash="dot", width=2),
                          annotation_text=floor_label, annotation_position="top right",
                          annotation_font_size=style.SMALL)
    rows = -(-len(fig.data) // 2)                                 # legend rows under the axis
    style.layout(fig, height=380 + 28 * rows, title=title, hovermode="x unified", uirevision="train",
                 legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
                 margin=dict(b=56 + 28 * rows))
    fig.update_xaxes(title_text=_("step"), rangemode="tozero")
    fig.update_yaxes(title_text=axis, type="log" if log else "linear", dtick=1 if log else None)
    return style.big_axes(fig)


def augmentation_rows(stored: np.ndarray, seen: np.ndarray, gap: int = 2) -> list[np.ndarray]:
    """The same training images (N, C, H, W) floats in [0, 1], as stored and as the trainer sees
    them (augmented): two pictures (H*s, N*(W+gap)*s[, 3]) uint8, each a row of tiles on white,
    enlarged s times with nearest neighbours (s: 28-pixel images 3x) so pixels stay sharp."""
    out = []
    for a in (stored, seen):
        u8 = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)           # (N, C, H, W)
        N, C, H, W = u8.shape
        row = np.full((C, H, N * (W + gap) - gap), 255, np.uint8)
        for i in range(N):
            row[:, :, i * (W + gap):i * (W + gap) + W] = u8[i]
        s = max(2, min(4, 84 // max(1, H)))
        row = row.repeat(s, axis=1).repeat(s, axis=2)
        out.append(row[0] if C == 1 else row.transpose(1, 2, 0))
    return out
