"""Figures of fine-tuning: the three modes' validation accuracy over steps on one chart, and the
network's blocks as a diagram, each bar as long as its parameter count and coloured by whether it
trains (frozen, slower, trained, the new head). Pure plotly, no Streamlit.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from karp_models.i18n import _
from karp_models.models.finetune import Block
from karp_models.ui import style

# a mode keeps its colour on every chart: the head alone, the whole network, from scratch
MODE_COLORS = {"head": "#1f77b4", "whole": "#d62728", "scratch": "#7f7f7f"}
FROZEN, SLOWER, TRAINED, NEW = "#9ca3af", "#f4a259", "#d9480f", "#2b8a3e"


@dataclass(frozen=True)
class ModeCurve:
    mode: str                         # 'head' | 'whole' | 'scratch'
    label: str                        # the legend's words
    steps: Sequence[int]              # evaluations
    accuracy: Sequence[float]         # validation accuracy there, a fraction


MODE_DASH = {"head": "solid", "whole": "dash", "scratch": "dot"}
MODE_MARKER = {"head": "circle", "whole": "diamond", "scratch": "x"}


def modes_figure(curves: Sequence[ModeCurve], chance: float | None = None, height: int = 400) -> go.Figure:
    """Validation accuracy (%) over training steps, one line per mode, with the legend below the
    axis and, when given, chance (1 / classes) as a dotted line."""
    fig = go.Figure()
    for i, c in enumerate(curves):   # lines that coincide (all at 100%) stay visible: widths, dashes, markers differ
        fig.add_scatter(x=list(c.steps), y=[100 * a for a in c.accuracy], mode="lines+markers", name=c.label,
                        line=dict(color=MODE_COLORS.get(c.mode, style.RUNS[0]), width=max(3, 9 - 3 * i),
                                  dash=MODE_DASH.get(c.mode, "solid")),
                        marker=dict(size=max(8, 16 - 4 * i), symbol=MODE_MARKER.get(c.mode, "circle")))
    if chance is not None:
        fig.add_hline(y=100 * chance, line=dict(color="#555", dash="dot", width=2),
                      annotation_text=_("chance"), annotation_position="bottom right",
                      annotation_font_size=style.SMALL)
    style.layout(fig, height=height, title=_("Validation accuracy of the three ways to train"),
                 hovermode="x unified", uirevision="modes",
                 legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
                 margin=dict(l=10, r=10, t=50, b=90))
    fig.update_xaxes(title_text=_("training step"), rangemode="tozero")
    fig.update_yaxes(title_text=_("validation accuracy (%)"), range=[0, 102])
    return style.big_axes(fig)


def block_state(b: Block) -> tuple[str, str]:
    """(colour, words) of a block in the diagram."""
    if b.frozen:
        return FROZEN, _("frozen")
    if b.new:
        return NEW, _("new, trained")
    if b.lr_scale < 1:
        return SLOWER, _("trained at {scale}× the learning rate").format(scale=f"{b.lr_scale:g}")
    return TRAINED, _("trained")


def blocks_figure(blocks: Sequence[Block], title: str = "") -> go.Figure:
    """One horizontal bar per block, input at the top, its length the parameter count (log
    scale: a head of a few hundred weights beside layers of millions), coloured and labelled by
    block_state."""
    names = [b.name for b in blocks]
    states = [block_state(b) for b in blocks]
    fig = go.Figure(go.Bar(
        y=names, x=[max(b.params, 1) for b in blocks], orientation="h",
        marker=dict(color=[c for c, _w in states], line=dict(color="#333", width=1)),
        text=[f"{w} · {b.params:,}" for b, (_c, w) in zip(blocks, states)], textposition="auto",
        insidetextanchor="start", textfont=dict(size=style.SMALL),
        hovertemplate="%{y}: %{x:,} " + _("parameters") + "<extra></extra>"))
    style.layout(fig, height=110 + 30 * len(blocks), title=title or None, showlegend=False,
                 margin=dict(l=10, r=10, t=50 if title else 10, b=10), bargap=0.25)
    fig.update_xaxes(type="log", dtick=1, tickformat="~s", title_text=_("parameters (log scale)"))
    fig.update_yaxes(autorange="reversed", title_text=None)
    return style.big_axes(fig)
