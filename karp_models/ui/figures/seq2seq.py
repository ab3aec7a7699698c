"""Figures of the seq2seq page: the alignment heatmap (output characters x source characters)
and the training curves (loss and held-out exact match). Plain sequences in, no trainer classes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.ui import style


def show(ch: str) -> str:
    """A character as an axis label: spaces visible, and no '<' (plotly reads labels as HTML)."""
    return {" ": "␣", "</s>": _("end"), "<": "&lt;", ">": "&gt;", "&": "&amp;"}.get(ch, ch)


def alignment_figure(tr, height: int = 400) -> go.Figure:
    """Rows: output characters (first at the top, </s> last); columns: source characters.
    Cell (i, j) is alpha_ij, how much writing output i looked at source character j.

    Args:
        tr: a translation with .source (str), .out_chars (T_out strings) and .alignment
            (T_out, S) in [0, 1] (seq2seq_train.Translation).
    """
    A = tr.alignment                                                   # (T_out, S)
    T, S = A.shape
    fig = go.Figure(go.Heatmap(
        z=A, x=list(range(S)), y=list(range(T)), zmin=0, zmax=1, colorscale=style.WEIGHT_SCALE,
        colorbar=dict(title=dict(text="α"), thickness=14),
        customdata=np.array([[f"{show(tr.source[j])} (#{j + 1})" for j in range(S)]
                             for _ in range(T)]),
        hovertemplate=_("writing %{y}<br>looks at %{customdata}<br>α = %{z:.2f}") + "<extra></extra>"))
    mono = dict(size=16, family=style.MONO)
    x_font = {**mono, "size": max(10, min(16, 16 * 26 // max(S, 1)))}  # long inputs: smaller, not overlapping
    fig.update_xaxes(tickvals=list(range(S)), ticktext=[show(c) for c in tr.source], tickangle=0,
                     tickfont=x_font, title_text=_("input (what it reads)"), automargin=True)
    fig.update_yaxes(tickvals=list(range(T)), ticktext=[show(c) for c in tr.out_chars],
                     autorange="reversed", tickfont=mono, title_text=_("output (what it writes)"),
                     automargin=True)
    return style.layout(fig, height=height, margin=dict(l=10, r=10, t=10, b=10))


def curves_figure(steps: Sequence[int], losses: Sequence[float],
                  val: Sequence[tuple[int, float]]) -> go.Figure:
    """Training loss (log scale, left) and held-out exact match (%, right) against the step.

    Args:
        steps, losses: the training loss at each logged step.
        val: (step, fraction of held-out examples exactly right) at each evaluation.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=list(steps), y=list(losses), mode="lines", line=dict(width=3, color=style.BLUE),
                    name=_("training loss"))
    fig.add_scatter(x=[s for s, _ in val], y=[100 * a for _, a in val], mode="lines+markers",
                    marker=dict(size=9), line=dict(width=3, color=style.GREEN),
                    name=_("held-out dates exactly right (%)"), secondary_y=True)
    fig.update_yaxes(type="log", dtick=1, title_text=_("cross-entropy (nats, log)"), secondary_y=False)
    fig.update_yaxes(range=[0, 101], tickvals=[0, 25, 50, 75, 95, 100], title_text=_("exact (%)"),
                     secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text=_("step"), rangemode="tozero")
    return style.layout(fig, height=400, margin=dict(l=10, r=10, t=10, b=10), uirevision="s2s",
                        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
