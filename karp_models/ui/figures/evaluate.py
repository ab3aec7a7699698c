"""Figures and tables of the Evaluate page: the clickable confusion matrix, the reliability
diagram, the embedding projector, the per-class table and the two-model disagreement bars.
The numbers come from introspect.evaluate; every figure is projector-sized (style.big_axes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.introspect import evaluate as ev
from karp_models.ui import style


def confusion_figure(cm: np.ndarray, classes: tuple[str, ...], normalised: bool,
                     selected: tuple[int, int] | None = None) -> go.Figure:
    """Heatmap of cm (K, K) (rows true, columns predicted; counts, or row shares when
    `normalised`) with an invisible marker on every cell, so a click selects the cell (plotly
    heatmaps have no selection events of their own); `selected` (true, predicted) is highlighted."""
    K = len(classes)
    rn = ev.row_normalised(cm)
    z = rn if normalised else cm
    text = [[(f"{rn[i, j]:.0%}" if normalised else f"{cm[i, j]:,}") if cm[i, j] else ""
             for j in range(K)] for i in range(K)]
    zc = z if normalised else np.sqrt(z)              # square root keeps the off-diagonal visible
    fig = go.Figure(go.Heatmap(z=zc, x=list(classes), y=list(classes), text=text,
                               texttemplate="%{text}", textfont=dict(size=style.SIZE - 1),
                               colorscale=style.WEIGHT_SCALE, showscale=False, hoverinfo="skip",
                               xgap=1, ygap=1))
    ii, jj = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    words = _("true <b>{truth}</b>, predicted <b>{pred}</b><br>{n:,} images ({share:.1%} of {truth})<br>click "
              "to see them")
    hover = [words.format(truth=classes[i], pred=classes[j], n=cm[i, j], share=rn[i, j]) for i, j in zip(ii, jj)]
    sel = [int(np.flatnonzero((ii == selected[0]) & (jj == selected[1]))[0])] if selected else None
    fig.add_trace(go.Scatter(
        x=[classes[j] for j in jj], y=[classes[i] for i in ii], mode="markers",
        marker=dict(symbol="square", size=max(18, 560 // K - 6), color="rgba(0,0,0,0)",
                    line=dict(width=0)),
        customdata=[[int(i), int(j)] for i, j in zip(ii, jj)], hovertext=hover, hoverinfo="text",
        selectedpoints=sel, selected=dict(marker=dict(color="rgba(255,165,0,0.35)")),
        unselected=dict(marker=dict(opacity=1)), showlegend=False))
    fig.update_xaxes(title=_("predicted class"), side="bottom", tickangle=-35, range=[-0.5, K - 0.5],
                     showgrid=False)
    fig.update_yaxes(title=_("true class"), range=[K - 0.5, -0.5], showgrid=False)
    style.layout(fig, height=650, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
                 dragmode=False, plot_bgcolor="white")
    return style.big_axes(fig)


def per_class_frame(cm: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """Precision, recall, F1, support and the most frequent confusion of every class (headers in the
    current language)."""
    pc = ev.per_class(cm)
    off = cm.astype(float).copy()
    np.fill_diagonal(off, -1)
    worst = off.argmax(1)
    return pd.DataFrame({
        _("class"): list(classes), _("precision"): pc.precision, _("recall"): pc.recall, _("F1"): pc.f1,
        _("test images"): pc.support,
        _("most often mistaken for"): [f"{classes[w]} ({cm[k, w]:,})" if cm[k, w] else "—"
                                       for k, w in enumerate(worst)],
    })


def reliability_figure(rel: ev.Reliability) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin (bars) against the bin's mean confidence
    (ticks) and the diagonal; below, images per bin (log scale)."""
    centres = (rel.edges[:-1] + rel.edges[1:]) / 2
    w = rel.edges[1] - rel.edges[0]
    has = rel.counts > 0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                        vertical_spacing=0.06)
    fig.add_trace(go.Bar(x=centres[has], y=rel.accuracy[has], width=w * 0.95,
                         name=_("accuracy in the bin"), marker_color=style.BLUE,
                         hovertemplate=_("confidence %{x:.2f}<br>accuracy %{y:.1%}") + "<extra></extra>"),
                  1, 1)
    red = style.CATEGORY[3]
    fig.add_trace(go.Scatter(x=centres[has], y=rel.confidence[has], mode="markers",
                             name=_("mean confidence in the bin"),
                             marker=dict(symbol="line-ew-open", size=22, color=red,
                                         line=dict(width=4, color=red)),
                             hovertemplate=_("mean confidence %{y:.1%}") + "<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("perfectly calibrated"),
                             line=dict(dash="dash", color="black")), 1, 1)
    fig.add_trace(go.Bar(x=centres, y=rel.counts, width=w * 0.95, name=_("images per bin"),
                         marker_color=style.GREY, hovertemplate=_("%{y:,} images") + "<extra></extra>"),
                  2, 1)
    fig.update_yaxes(title=_("accuracy"), range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title=_("images"), type="log", row=2, col=1)
    fig.update_xaxes(title=_("confidence (top-1 probability)"), range=[0, 1], row=2, col=1)
    style.layout(fig, height=680, barmode="overlay", margin=dict(l=10, r=10, t=70, b=10),
                 legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return style.big_axes(fig)


def projector_figure(coords: np.ndarray, labels: np.ndarray, pred: np.ndarray, probs: np.ndarray,
                     classes: tuple[str, ...], colour_by: str) -> go.Figure:
    """2-D embedding (n, 2): one trace per class (colour_by 'true class' or the prediction), ✕
    for mistakes; customdata is the test image's index, for click and lasso selection."""
    fig = go.Figure()
    by = labels if colour_by == "true class" else pred
    n = len(coords)
    for k, name in enumerate(classes):
        m = np.flatnonzero(by[:n] == k)
        wrong = labels[m] != pred[m]
        right = _("#{index}: true <b>{truth}</b><br>predicted {pred} ({p:.0%})")
        mistake = _("#{index}: true <b>{truth}</b><br>predicted {pred} ({p:.0%}) (a mistake)")
        hover = [(mistake if w else right).format(index=i, truth=classes[labels[i]], pred=classes[pred[i]],
                                                  p=probs[i, pred[i]]) for i, w in zip(m, wrong)]
        fig.add_trace((go.Scattergl if n > 5000 else go.Scatter)(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=name, customdata=m.tolist(),
            marker=dict(size=6 if n > 3000 else 8, color=style.CATEGORY[k % len(style.CATEGORY)],
                        symbol=np.where(wrong, "x", "circle"), opacity=0.8),
            hovertext=hover, hoverinfo="text",
            selected=dict(marker=dict(size=18, opacity=1)),
            unselected=dict(marker=dict(opacity=0.25))))
    fig.update_xaxes(showticklabels=False, zeroline=False, title=None)
    fig.update_yaxes(showticklabels=False, zeroline=False, title=None, scaleanchor="x")
    # no dragmode here: Streamlit then pans on drag and selects on click (a lasso or box dragmode
    # would turn click-selection off); the lasso is one click away in the mode bar
    style.layout(fig, height=720, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                 legend=dict(itemsizing="constant"))
    return style.big_axes(fig)


def disagreement_figure(per_class: pd.DataFrame) -> go.Figure:
    """Grouped bars: one group per true class (the index), one bar per column (kind of
    disagreement between two models)."""
    fig = go.Figure([go.Bar(x=per_class.index, y=per_class[c], name=c) for c in per_class.columns])
    style.layout(fig, height=380, title=_("Disagreements by true class"), barmode="group",
                 margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return style.big_axes(fig)
