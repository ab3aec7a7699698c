"""Figures and tables of the Compression page: accuracy against size on disk and against CPU
latency for every compressed model (the original marked), the table of points, and the
explanation of one image by the original and by a compressed model side by side.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from karp_models.compress import KIND_NAMES, KINDS, Point, mean_similarity
from karp_models.i18n import _
from karp_models.ui import style
from karp_models.ui.figures.explain import overlay_figure, short

AXES = ("size", "latency")
COLOURS = {"unstructured": style.CATEGORY[0], "structured": style.CATEGORY[1],
           "int8-dynamic": style.CATEGORY[2], "int8-static": style.CATEGORY[4]}


def _series(points: Sequence[Point]) -> list[tuple[str, str, bool, list[Point]]]:
    """(name, kind, fine-tuned, points) per line: each pruning kind with and without a fine-tune,
    each int8 kind on its own."""
    out = []
    for kind in KINDS:
        for tuned in (False, True):
            ps = [p for p in points if p.kind == kind and bool(p.finetune_steps) == tuned]
            if ps:
                name = (_("{kind}, fine-tuned {steps} steps").format(kind=_(KIND_NAMES[kind]), steps=ps[0].finetune_steps)
                        if tuned else _("{kind}, pruned only").format(kind=_(KIND_NAMES[kind])))
                out.append((name, kind, tuned, sorted(ps, key=lambda p: p.sparsity)))
    for kind in ("int8-dynamic", "int8-static"):
        ps = [p for p in points if p.kind == kind]
        if ps:
            out.append((ps[0].label, kind, False, ps))
    return out


def x_value(p: Point, axis: str) -> float:
    """A point's x: size on disk in MB (as stored: sparse where that is smaller) or latency in ms."""
    return p.size.stored / 1e6 if axis == "size" else p.latency_ms


def tradeoff_figure(points: Sequence[Point], axis: str, *, height: int = 430) -> go.Figure:
    """Test accuracy (%) against size on disk (MB) or batch-1 CPU latency (ms): one line per
    pruning kind (dashed: pruned only, solid: fine-tuned), its points labelled with their sparsity,
    int8 points as diamonds, the original as a black star."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
    orig = points[0]
    fig = go.Figure()
    hover = _("%{customdata[0]}<br>accuracy %{y:.1f}%<br>size %{customdata[1]:.2f} MB "
              "(file as written: %{customdata[2]:.2f} MB)<br>latency %{customdata[3]:.2f} ms") + "<extra></extra>"

    def data(ps: Sequence[Point]) -> dict:
        return dict(x=[x_value(p, axis) for p in ps], y=[100 * p.accuracy for p in ps],
                    customdata=[[p.label, p.size.stored / 1e6, p.size.dense / 1e6, p.latency_ms] for p in ps],
                    hovertemplate=hover)

    series = _series(points)
    labelled = {kind: tuned for _n, kind, tuned, _p in series}          # one line a kind says its sparsities
    for name, kind, tuned, ps in series:
        colour = COLOURS[kind]
        if kind in KINDS:
            text = axis == "size" and labelled[kind] == tuned            # latency: the points crowd
            fig.add_scatter(**data([orig] + ps), name=name, mode="lines+markers+text" if text else "lines+markers",
                            text=[""] + [f"{p.sparsity:.0%}" for p in ps] if text else None,
                            textposition="middle left", textfont=dict(size=style.SMALL, color=colour),
                            line=dict(color=colour, width=3, dash=None if tuned else "dot"),
                            marker=dict(size=10, symbol="circle" if tuned else "circle-open", line=dict(width=2)))
        else:
            fig.add_scatter(**data(ps), name=name, mode="markers",
                            marker=dict(size=16, symbol="diamond", color=colour, line=dict(width=1, color="black")))
    fig.add_scatter(**data([orig]), name=_("original model"), mode="markers",
                    marker=dict(size=22, symbol="star", color="black"))
    titles = {"size": (_("Accuracy against size on disk"), _("MB on disk (zeros stored sparsely)")),
              "latency": (_("Accuracy against CPU latency"), _("ms per image (batch 1, median)"))}
    head, xtitle = titles[axis]
    style.layout(fig, height=height, title=head, plot_bgcolor="white", showlegend=False,
                 margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(title_text=xtitle, gridcolor="#e5e7eb", rangemode="tozero" if axis == "size" else None)
    fig.update_yaxes(title_text=_("test accuracy (%)"), gridcolor="#e5e7eb", range=[0, 102])  # 0-100 always: a
    return style.big_axes(fig)                                                              # 0.1-point drop looks small


def legend_html(points: Sequence[Point]) -> str:
    """The charts' shared legend as one line of HTML (two legends would take a chart's room)."""
    items = []
    for name, kind, tuned, _ps in _series(points):
        colour = COLOURS[kind]
        if kind in KINDS:
            mark = (f"<span style='display:inline-block;width:2.2em;border-top:3px {'solid' if tuned else 'dotted'} "
                    f"{colour};vertical-align:middle'></span>")
        else:
            mark = f"<span style='color:{colour};font-size:1.3em'>&#9670;</span>"
        items.append(f"<span style='white-space:nowrap;margin-right:1.4em'>{mark} {name}</span>")
    items.append(f"<span style='white-space:nowrap'><b style='font-size:1.3em'>&#9733;</b> {_('original model')}</span>")
    return "<div style='font-size:1.05rem;line-height:1.9'>" + " ".join(items) + "</div>"   # breaks between


def points_frame(points: Sequence[Point]) -> pd.DataFrame:
    """One row per point, headers in the current language; numbers as numbers (format when shown)."""
    rows = []
    for p in points:
        rows.append({
            _("model"): p.label,
            _("accuracy (%)"): 100 * p.accuracy,
            _("same answer as original (%)"): 100 * p.agreement,
            _("size (MB)"): p.size.stored / 1e6,
            _("latency (ms)"): p.latency_ms,
            _("speed-up"): p.speedup,
            _("weights at 0 (%)"): 100 * p.zero_weights,
            _("channels at 0 (%)"): 100 * p.zero_channels,
            **{_("{method} like original").format(method=short(m)): mean_similarity(s)
               for m, s in p.similarity.items()},
        })
    return pd.DataFrame(rows).set_index(_("model"))


def maps_figure(original: dict[str, np.ndarray], now: dict[str, np.ndarray], x: np.ndarray,
                name: str) -> go.Figure:
    """Each method's map (a row each) for the original (left) and the compressed model `name`
    (right), over the image x (C, H, W) in [0, 1], on the Explain page's signed scale; maps:
    method -> (H, W)."""
    maps, titles = {}, {}
    for m in original:
        for who, src in ((_("original model"), original), (name, now)):
            key = f"{m}|{who}"
            maps[key] = src[m]
            titles[key] = _("{method} · {model}").format(method=short(m), model=who)
    return overlay_figure(x, maps, title_of=titles.get, cols=2, first=None, height_per_row=270)
