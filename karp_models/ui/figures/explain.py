"""Figures and exports of the Explain page: attribution maps over the image on one signed scale
(plotly, and the same panel as a PNG), the sanity check's correlations, deletion / insertion
curves, the adversarial images; the summary table and the maps as CSV.
"""
from __future__ import annotations

import copy
import functools
import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.introspect import attribution as attr
from karp_models.introspect.similarity import judgeable
from karp_models.ui import style
from karp_models.ui.images import display


def short(method: str) -> str:
    """The method's panel title in the 4-column grids (the method table's abbrev), in the current
    language."""
    m = attr.METHODS.get(method)
    return attr.title(m.abbrev if m is not None else method)


def measure_label(key: str) -> str:
    """A similarity as a legend or a column names it: 'Spearman |map|', 'Spearman signed'."""
    measure, kind = key.split(" ", 1)
    return key if kind == "|map|" else _("{measure} signed").format(measure=measure)


def overlay_figure(x: np.ndarray, maps: dict[str, np.ndarray], *,
                   title_of: Callable[[str], str] | None = None, cols: int = 5,
                   first: str | None = "input", height_per_row: int = 210) -> go.Figure:
    """The image, then one panel per map: the normalised map over the image on one shared signed
    scale (red for the class, blue against it, transparent at 0), with one colour bar.

    Args:
        x: the image (C, H, W) in [0, 1]; maps: name -> (H, W) raw attributions.
        title_of: panel title of a map's name (default the name); first: the image's own panel
            title, or None for no plain image panel.

    Built as one dict on the grid's layout (made once per grid by make_subplots) and validated
    once: the same figure as make_subplots, add_trace and update_* per panel, in a tenth of the
    time (plotly's per-call validation is pure Python, and a classroom's Explain page waits on it).
    """
    norm = attr.normalise(maps)
    names = ([first] if first else []) + list(maps)
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    titles = [n if title_of is None or n == first else title_of(n) for n in names]
    layout = _grid_layout(rows, cols, len(names))
    for a, t in zip(layout["annotations"], titles):
        a["text"] = t
    img = display(x)
    hover = _("row %{y}, col %{x}<br>scaled %{z:.2f}<br>raw %{customdata:.3g}") + "<extra></extra>"
    data = []
    for i, n in enumerate(names):
        ax = "" if i == 0 else str(i + 1)
        data.append(dict(type="image", z=img, opacity=1.0 if n == first else 0.55, hoverinfo="skip",
                         xaxis=f"x{ax}", yaxis=f"y{ax}"))
        if n != first:
            data.append(dict(type="heatmap", z=norm[n], coloraxis="coloraxis", customdata=maps[n],
                             hovertemplate=hover, xaxis=f"x{ax}", yaxis=f"y{ax}"))
    # numbers: each map is divided by its own 99th percentile of |value| (attr.normalise)
    bar = dict(title=dict(text=_("for the class ↑<br>against ↓<br>(× the map's<br>99th pct.)")),
               tickvals=[-1, -0.5, 0, 0.5, 1], ticktext=["−1", "−0.5", "0", "+0.5", "+1"])
    layout.update(font=style.FONT, height=height_per_row * rows + 40, margin=style.MARGIN,
                  plot_bgcolor="white",
                  coloraxis=dict(colorscale=style.ATTRIBUTION_SCALE, cmin=-1, cmax=1, colorbar=bar))
    return go.Figure(data=data, layout=layout)


def _grid_layout(rows: int, cols: int, n: int) -> dict:
    """A fresh copy of the layout of an overlay grid of n panels: make_subplots' axes (domains,
    hidden, square, y reversed, projector tick size) and its n title annotations (text to fill)."""
    return copy.deepcopy(_grid(rows, cols, n))


@functools.cache                 # a few grid shapes per process, never mutated (copied above)
def _grid(rows: int, cols: int, n: int) -> dict:
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"panel {i}" for i in range(n)],
                        horizontal_spacing=0.02, vertical_spacing=0.1 if rows > 1 else 0.02)
    fig.update_xaxes(visible=False, tickfont_size=style.SMALL)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", tickfont_size=style.SMALL)
    for i in range(n):
        fig.layout[f"yaxis{'' if i == 0 else i + 1}"].scaleanchor = f"x{'' if i == 0 else i + 1}"
    fig.update_annotations(font=style.SMALL_FONT)
    return fig.to_dict()["layout"]


def png_panel(x: np.ndarray, maps: dict[str, np.ndarray], title: str) -> bytes:
    """The overlay panel as a PNG (matplotlib's object API: safe off the script thread)."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    norm = attr.normalise(maps)
    names = [None] + list(maps)                                      # None: the input
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    cmap = LinearSegmentedColormap.from_list(
        "karp", [(p, style.rgba(c)) for p, c in style.ATTRIBUTION_SCALE])
    fonts = style.mpl_fonts()                                        # Chinese titles: a CJK font
    fig = Figure(figsize=(3.2 * cols + 1, 3.4 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    img = display(x)
    for ax in axes.flat:
        ax.axis("off")
    im = None
    for i, n in enumerate(names):
        ax = axes.flat[i]
        ax.imshow(img, alpha=1.0 if n is None else 0.55)
        if n is not None:
            im = ax.imshow(norm[n], cmap=cmap, vmin=-1, vmax=1)
        ax.set_title(_("input") if n is None else attr.title(n), fontsize=14, fontfamily=fonts)
    if im is not None:
        bar = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7)
        bar.set_label(_("against (−)  /  for the class (+)"), fontfamily=fonts)
    fig.suptitle(title, fontsize=15, fontfamily=fonts)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def maps_csv(maps: dict[str, attr.Attribution]) -> bytes:
    """Long format: method, row, col, attribution (summed over channels), scaled value, and why
    the map cannot be judged (empty when it can)."""
    norm = attr.normalise({k: a.map for k, a in maps.items()})
    frames = []
    for k, a in maps.items():
        H, W = a.map.shape
        rr, cc = np.mgrid[0:H, 0:W]
        why = judgeable(a.map)
        frames.append(pd.DataFrame({"method": k, "row": rr.ravel(), "col": cc.ravel(),
                                    "attribution": a.map.ravel(), "scaled": norm[k].ravel(),
                                    "cannot judge because": "" if why is None else f"the map {why}"}))
    return pd.concat(frames).to_csv(index=False).encode()


def summary_frame(maps: dict[str, attr.Attribution]) -> pd.DataFrame:
    """One row per method: what it computes, sum, convergence delta, range, time (ms), and
    whether its map can be judged (else why not). English column names (a CSV's); the page shows
    summary_table() of it."""
    rows = [{"method": k, "what it computes": attr.METHODS[k].short,
             "sum of attributions": float(a.map.sum()),
             "convergence delta": "–" if a.delta is None else f"{a.delta:.2g}",
             "min": float(a.map.min()), "max": float(a.map.max()), "ms": a.seconds * 1000,
             "can it be judged?": "yes" if (why := judgeable(a.map)) is None else f"no: the map {why}"}
            for k, a in maps.items()]
    return pd.DataFrame(rows).set_index("method")


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """summary_frame's table as the page shows it: headers, method names and words in the
    current language."""
    out = df.copy()
    out["what it computes"] = [_(attr.METHODS[k].short) for k in df.index]
    out["can it be judged?"] = [_("yes") if v == "yes" else _("no: the map {why}").format(why=v.removeprefix("no: the map "))
                                for v in df["can it be judged?"]]
    heads = {"what it computes": _("what it computes"), "sum of attributions": _("sum of attributions"),
             "convergence delta": _("convergence delta"), "min": _("min"), "max": _("max"), "ms": _("ms"),
             "can it be judged?": _("can it be judged?")}
    return out.rename(columns=heads, index=attr.title).rename_axis(_("method"))


MEASURE_COLOURS = {"Spearman": style.CATEGORY[0], "SSIM": style.CATEGORY[1], "HOG": style.CATEGORY[2]}


def sanity_figure(names: Sequence[str], series: dict[str, dict[str, Sequence[float]]],
                  target_prob: Sequence[float], class_name: str, *,
                  status: dict[str, str] | None = None, drivers: dict[str, Sequence[str]] | None = None,
                  band: tuple[float, float] = (0.3, 0.5), cols: int = 3) -> go.Figure:
    """One small panel per method: each similarity of its map with the original (colour: the
    measure; solid: |map|, dashed: the signed map) as layers are randomised from the output side
    to the input side, the randomised model's probability of the class (dotted), and the band
    between 'passes' and 'fails' (shaded). Gaps where a map cannot be judged (nan).

    Args:
        names: readable step names ("original", "fc (output)", ..., "stem conv (input)").
        series: method -> {"Spearman |map|": [value per step], ...}.
        status: method -> verdict word for the panel title; drivers: method -> the similarities
            that decide its verdict (drawn thicker).
    """
    methods = list(series)
    cols = max(1, min(cols, len(methods)))
    rows = -(-len(methods) // cols)
    titles = [f"{short(m)}: {status[m]}" if status and m in status else short(m) for m in methods]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=0.09 if rows > 1 else 0.02)
    x = list(range(len(names)))
    keys = list(dict.fromkeys(k for m in methods for k in series[m]))

    def line(key: str, width: float) -> dict:
        measure, kind = key.split(" ", 1)
        return dict(color=MEASURE_COLOURS.get(measure, style.GREY), width=width,
                    dash="solid" if kind == "|map|" else "dash")

    for key in keys:                                                  # the legend, in thin lines
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines+markers", name=measure_label(key), legendgroup=key,
                                 line=line(key, 1.5), marker=dict(size=4)), 1, 1)
    for i, m in enumerate(methods):
        r, c = i // cols + 1, i % cols + 1
        for key, ys in series[m].items():
            thick = drivers is not None and key in drivers.get(m, ())
            fig.add_trace(go.Scatter(
                x=x, y=[None if v is None or not np.isfinite(v) else v for v in ys], mode="lines+markers",
                name=measure_label(key), legendgroup=key, showlegend=False, line=line(key, 4 if thick else 1.5),
                marker=dict(size=7 if thick else 4),
                hovertemplate=f"{attr.title(m)}<br>{measure_label(key)}: %{{y:.2f}}<extra></extra>"), r, c)
        fig.add_trace(go.Scatter(x=x, y=list(target_prob), mode="lines", name=f"P({class_name})",
                                 legendgroup="p", showlegend=i == 0, hoverinfo="skip",
                                 line=dict(dash="dot", color="black", width=1.5)), r, c)
        below = i + cols < len(methods)                               # another panel under this one
        fig.update_xaxes(tickvals=x, ticktext=list(names), showticklabels=not below, tickangle=-45,
                         tickfont=style.SMALL_FONT, range=[-0.3, len(names) - 0.7], row=r, col=c)
        fig.update_yaxes(range=[-1.05, 1.05], tickvals=[-1, 0, 1], showticklabels=c == 1,
                         tickfont=style.SMALL_FONT, row=r, col=c)
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor=style.MUTED, opacity=0.18, line_width=0, row=r, col=c)
    fig.update_annotations(font=style.SMALL_FONT)
    return style.layout(fig, height=190 * rows + 200, margin=dict(l=10, r=10, t=90, b=10),
                        legend=dict(orientation="h", x=0, y=1.0, yanchor="top", yref="container",
                                    font=style.SMALL_FONT),
                        hovermode="closest")


def _rho(v: float | None) -> str:
    return f"ρ = {v:.2f}" if v is not None and np.isfinite(v) else _("ρ: cannot judge")


def sanity_maps_figure(x: np.ndarray, original: dict[str, np.ndarray], randomised: dict[str, np.ndarray],
                       rho: dict[str, float], rho_signed: dict[str, float] | None = None) -> go.Figure:
    """Each method's original map beside its map for the randomised model, titled with ρ, the
    Spearman of |map|, and under it the signed map's (methods in `rho_signed`); nan: cannot judge."""
    pairs = {}
    for k in original:
        pairs[f"{k}|o"], pairs[f"{k}|r"] = original[k], randomised[k]

    def title(n: str) -> str:
        k = n.split("|")[0]
        if n.endswith("|o"):
            return _("{method}: original").format(method=short(k))
        signed = (rho_signed or {}).get(k)
        words = f"{short(k)}: {_rho(rho[k])}"
        return words if signed is None else _("{words}<br>signed map: {rho}").format(words=words, rho=_rho(signed))

    return overlay_figure(x, pairs, title_of=title, cols=4, first=None, height_per_row=270)


def faithfulness_curve_figure(kind: str, curves: dict[str, tuple[Sequence[float], Sequence[float], float]],
                              class_name: str) -> go.Figure:
    """Deletion or insertion curves: P(class) against the share of pixels removed / added, one
    line per method named with its area under the curve.

    Args:
        kind: 'deletion' | 'insertion'; curves: method -> (fractions, probabilities, AUC).
    """
    fig = go.Figure()
    for m, (frac, prob, auc) in curves.items():
        fig.add_trace(go.Scatter(x=list(frac), y=list(prob), mode="lines", name=f"{m} ({auc:.2f})"))
    fig.update_xaxes(title_text=_("share of pixels removed") if kind == "deletion" else _("share of pixels added"))
    fig.update_yaxes(range=[0, 1.02])
    title = (_("Deletion: P({name})") if kind == "deletion" else _("Insertion: P({name})")).format(name=class_name)
    return style.layout(fig, height=400, title=title)


def adversarial_images_figure(x: np.ndarray, perturbation: np.ndarray, x_adv: np.ndarray,
                              eps: float) -> go.Figure:
    """Original, perturbation (scaled by 1/ε, signed colours) and adversarial image side by side.

    Args:
        x, x_adv: (C, H, W) in [0, 1]; perturbation: (C, H, W), at most ε per pixel.
    """
    e = max(eps, 1e-6)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.03,
                        subplot_titles=[_("original"), _("perturbation (×{k:.0f})").format(k=1 / e),
                                        _("adversarial")])
    fig.add_trace(go.Image(z=display(x)), 1, 1)
    fig.add_trace(go.Heatmap(z=perturbation.sum(0) / e / perturbation.shape[0], zmin=-1, zmax=1,
                             colorscale=style.SIGNED_SCALE, showscale=False), 1, 2)
    fig.add_trace(go.Image(z=display(x_adv)), 1, 3)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_annotations(font=style.FONT)
    return style.layout(fig, height=330)


def adversarial_maps_figure(x: np.ndarray, before: dict[str, np.ndarray], after: dict[str, np.ndarray],
                            similarity: dict[str, float], pred_before: str, pred_after: str) -> go.Figure:
    """Each method's map before and after the attack, both over the original image x (C, H, W);
    similarity: method -> Spearman of |map| before vs after (nan: cannot judge)."""
    maps = {}
    for m in before:
        maps[f"{m}|before"], maps[f"{m}|after"] = before[m], after[m]

    def title(n: str) -> str:
        k = n.split("|")[0]
        if n.endswith("before"):
            return f"{short(k)}: {pred_before}"
        return _("after: {name}, {rho}").format(name=pred_after, rho=_rho(similarity[k]))

    return overlay_figure(x, maps, title_of=title, cols=4, first=None, height_per_row=280)
