"""Figures of the Knock it out page: a knockout map (layer x head, or the cells that matter most), activation
patching over layers and positions, the logit lens as a table of characters, attention / gradient / knockout
side by side. Pure: arrays in, plotly figures out.

Cites: Wang et al. 2022 (IOI: head knockout and patching maps), nostalgebraist 2020 (the logit lens table),
Jain and Wallace 2019 (attention against gradients and leave-one-out).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from karp_models.i18n import _
from karp_models.ui import style
from karp_models.ui.figures.text import show_char

DIVERGING = [[0, "rgb(55,115,255)"], [0.5, "rgb(255,255,255)"], [1, "rgb(255,65,55)"]]


LENS_SCALE = [[0, "rgb(255,255,255)"], [1, "rgb(110,170,225)"]]   # light enough for black letters on top


def _chars_axis(fig: go.Figure, chars: str, first: int = 0) -> None:
    """x: positions first.. in the text, each tick labelled by its character (show_char)."""
    fig.update_xaxes(tickvals=list(range(first, first + len(chars))), ticktext=[show_char(c) for c in chars],
                     tickangle=0, tickfont=dict(size=style.SIZE), showgrid=False)


def _limit(z: np.ndarray) -> float:
    return float(max(np.abs(z).max(), 1e-6))


def head_map(effect: np.ndarray, title: str, colorbar: str, first: int = 0) -> go.Figure:
    """(n_layer, n_head) values as a grid with each value written in its cell; blue below 0, red above. Layers
    and heads are numbered from `first` (0, as everywhere in the app: the index in the model)."""
    L, H = effect.shape
    m = _limit(effect)
    fig = go.Figure(go.Heatmap(z=effect, x=[_("head {h}").format(h=h + first) for h in range(H)],
                               y=[_("layer {n}").format(n=n + first) for n in range(L)], colorscale=DIVERGING,
                               zmin=-m, zmax=m, text=np.round(effect, 2), texttemplate="%{text:+.2f}",
                               textfont=dict(size=style.SIZE), colorbar=dict(title=colorbar),
                               hovertemplate="%{y}, %{x}: %{z:+.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style.layout(fig, height=110 + 70 * L, title=title)


def cell_bars(effect: np.ndarray, labels: Sequence[str], title: str, top: int = 15) -> go.Figure:
    """The `top` parts with the largest |effect|, largest first, as horizontal bars."""
    order = np.argsort(-np.abs(effect))[:top]
    fig = go.Figure(go.Bar(x=effect[order], y=[labels[i] for i in order], orientation="h",
                           marker_color=[DIVERGING[0][1] if effect[i] < 0 else DIVERGING[2][1] for i in order],
                           hovertemplate="%{y}: %{x:+.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text=_("change of log-probability"))
    return style.layout(fig, height=120 + 26 * len(order), title=title)


def patching_map(resid: np.ndarray, chars: str, title: str) -> go.Figure:
    """(n_layer + 1, T) share of the clean answer restored by patching that layer at that position."""
    rows = [_("embeddings")] + [_("after layer {n}").format(n=n) for n in range(resid.shape[0] - 1)]
    fig = go.Figure(go.Heatmap(z=resid, x=list(range(len(chars))), y=rows, colorscale=DIVERGING, zmin=-1, zmax=1,
                               colorbar=dict(title=_("restored")), customdata=[[show_char(c) for c in chars]] * len(rows),
                               hovertemplate="%{y}, %{customdata} (#%{x}): %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    _chars_axis(fig, chars)
    return style.layout(fig, height=140 + 55 * resid.shape[0], title=title)


def lens_table(probs: np.ndarray, ids: np.ndarray, vocab: Sequence[str], chars: str, title: str,
               first: int = 0) -> go.Figure:
    """Logit lens: rows are residual points (embeddings first, the model's output last), columns positions;
    each cell names the top character there and is shaded by its probability."""
    top = probs[..., 0]                                                # (L + 1, T)
    text = [[show_char(vocab[i]) for i in row] for row in ids[..., 0]]
    hover = [[" · ".join(f"{show_char(vocab[i])} {p:.0%}" for i, p in zip(ids[r, t], probs[r, t]))
              for t in range(ids.shape[1])] for r in range(ids.shape[0])]
    rows = [_("embeddings")] + [_("after layer {n}").format(n=n) for n in range(probs.shape[0] - 1)]
    fig = go.Figure(go.Heatmap(z=top, x=list(range(first, first + len(chars))), y=rows,
                               text=text, texttemplate="%{text}", textfont=dict(size=style.SIZE + 2, color="black"),
                               customdata=hover, colorscale=LENS_SCALE, zmin=0, zmax=1,
                               colorbar=dict(title=_("probability")),
                               hovertemplate="%{y}, #%{x}: %{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    _chars_axis(fig, chars, first)
    fig.update_xaxes(title_text=_("reading this character"))
    return style.layout(fig, height=150 + 55 * probs.shape[0], title=title)


def side_by_side(scores: dict[str, np.ndarray], chars: str, title: str, first: int = 0) -> go.Figure:
    """One row per method over the context's characters, each scaled to its own largest value."""
    names = list(scores)
    z = np.stack([scores[n] / max(float(np.abs(scores[n]).max()), 1e-12) for n in names])
    fig = go.Figure(go.Heatmap(z=z, x=list(range(first, first + len(chars))), y=[_(n) for n in names],
                               colorscale=style.WEIGHT_SCALE, zmin=0, zmax=1, colorbar=dict(title=_("share of max")),
                               customdata=[[show_char(c) for c in chars]] * len(names),
                               hovertemplate="%{y}, %{customdata} (#%{x}): %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    _chars_axis(fig, chars, first)
    return style.layout(fig, height=330, title=title)
