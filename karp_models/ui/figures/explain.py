"""Figures and exports of the Explain page: attribution maps over the image on one signed scale
(plotly, and the same panel as a PNG), the sanity check's correlations, deletion / insertion
curves, the adversarial images; the summary table and the maps as CSV.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.introspect import attribution as attr
from karp_models.ui import style
from karp_models.ui.images import display

def short(method: str) -> str:
    """The method's panel title in the 4-column grids (the method table's abbrev)."""
    m = attr.METHODS.get(method)
    return m.abbrev if m is not None else method


def overlay_figure(x: np.ndarray, maps: dict[str, np.ndarray], *,
                   title_of: Callable[[str], str] | None = None, cols: int = 5,
                   first: str | None = "input", height_per_row: int = 210) -> go.Figure:
    """The image, then one panel per map: the normalised map over the image on one shared signed
    scale (red for the class, blue against it, transparent at 0), with one colour bar.

    Args:
        x: the image (C, H, W) in [0, 1]; maps: name -> (H, W) raw attributions.
        title_of: panel title of a map's name (default the name); first: the image's own panel
            title, or None for no plain image panel.
    """
    norm = attr.normalise(maps)
    names = ([first] if first else []) + list(maps)
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    titles = [n if title_of is None or n == first else title_of(n) for n in names]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.1 if rows > 1 else 0.02)
    img = display(x)
    hover = "row %{y}, col %{x}<br>scaled %{z:.2f}<br>raw %{customdata:.3g}<extra></extra>"
    for i, n in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Image(z=img, opacity=1.0 if n == first else 0.55, hoverinfo="skip"), r, c)
        if n != first:
            fig.add_trace(go.Heatmap(z=norm[n], coloraxis="coloraxis", customdata=maps[n],
                                     hovertemplate=hover), r, c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    for i in range(len(names)):
        fig.layout[f"yaxis{'' if i == 0 else i + 1}"].scaleanchor = f"x{'' if i == 0 else i + 1}"
    fig.update_annotations(font=style.SMALL_FONT)                    # up to 5 panel titles a row
    bar = dict(title=dict(text="for the class ↑<br>against ↓"), tickvals=[-1, 0, 1],
               ticktext=["−max", "0", "+max"])
    return style.layout(fig, height=height_per_row * rows + 40, plot_bgcolor="white",
                        coloraxis=dict(colorscale=style.ATTRIBUTION_SCALE, cmin=-1, cmax=1,
                                       colorbar=bar))


def png_panel(x: np.ndarray, maps: dict[str, np.ndarray], title: str) -> bytes:
    """The overlay panel as a PNG (matplotlib's object API: safe off the script thread)."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    norm = attr.normalise(maps)
    names = ["input"] + list(maps)
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    cmap = LinearSegmentedColormap.from_list(
        "karp", [(p, style.rgba(c)) for p, c in style.ATTRIBUTION_SCALE])
    fig = Figure(figsize=(3.2 * cols + 1, 3.4 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    img = display(x)
    for ax in axes.flat:
        ax.axis("off")
    im = None
    for i, n in enumerate(names):
        ax = axes.flat[i]
        ax.imshow(img, alpha=1.0 if n == "input" else 0.55)
        if n != "input":
            im = ax.imshow(norm[n], cmap=cmap, vmin=-1, vmax=1)
        ax.set_title(n, fontsize=14)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7,
                     label="against (−)  /  for the class (+)")
    fig.suptitle(title, fontsize=15)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def maps_csv(maps: dict[str, attr.Attribution]) -> bytes:
    """Long format: method, row, col, attribution (summed over channels), scaled value."""
    norm = attr.normalise({k: a.map for k, a in maps.items()})
    frames = []
    for k, a in maps.items():
        H, W = a.map.shape
        rr, cc = np.mgrid[0:H, 0:W]
        frames.append(pd.DataFrame({"method": k, "row": rr.ravel(), "col": cc.ravel(),
                                    "attribution": a.map.ravel(), "scaled": norm[k].ravel()}))
    return pd.concat(frames).to_csv(index=False).encode()


def summary_frame(maps: dict[str, attr.Attribution]) -> pd.DataFrame:
    """One row per method: what it computes, sum, convergence delta, range, time (ms)."""
    rows = [{"method": k, "what it computes": attr.METHODS[k].short,
             "sum of attributions": float(a.map.sum()),
             "convergence delta": "–" if a.delta is None else f"{a.delta:.2g}",
             "min": float(a.map.min()), "max": float(a.map.max()), "ms": a.seconds * 1000}
            for k, a in maps.items()]
    return pd.DataFrame(rows).set_index("method")


def sanity_figure(steps: Sequence[str], correlation: dict[str, Sequence[float]],
                  target_prob: Sequence[float], class_name: str) -> go.Figure:
    """Rank correlation of each method's map with the original as layers are randomised from
    the top (one line per method), and the randomised model's probability (dotted)."""
    fig = go.Figure()
    x = list(range(len(steps)))
    for k, rho in correlation.items():
        fig.add_trace(go.Scatter(x=x, y=list(rho), mode="lines+markers", name=k))
    fig.add_trace(go.Scatter(x=x, y=list(target_prob), mode="lines", name=f"P({class_name})",
                             line=dict(dash="dot", color="black")))
    ticks = [s.replace("+ ", "").replace("features.", "").replace("classifier.", "") for s in steps]
    return style.layout(fig, height=430, margin=dict(l=10, r=10, t=30, b=10),
                        yaxis=dict(title="rank correlation with the original", range=[-1, 1.05]),
                        xaxis=dict(title="layers randomised, from the top", tickvals=x,
                                   ticktext=ticks, tickangle=-35))


def sanity_maps_figure(x: np.ndarray, original: dict[str, np.ndarray],
                       randomised: dict[str, np.ndarray], rho: dict[str, float]) -> go.Figure:
    """Each method's original map beside its map for the randomised model (titled with ρ)."""
    pairs = {}
    for k in original:
        pairs[f"{k}|o"], pairs[f"{k}|r"] = original[k], randomised[k]

    def title(n: str) -> str:
        k = n.split("|")[0]
        return f"{short(k)}: " + ("original" if n.endswith("|o") else f"ρ = {rho[k]:.2f}")

    return overlay_figure(x, pairs, title_of=title, cols=4, first=None, height_per_row=260)


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
    fig.update_xaxes(title_text="share of pixels " + ("removed" if kind == "deletion" else "added"))
    fig.update_yaxes(range=[0, 1.02])
    return style.layout(fig, height=400, title=f"{kind.capitalize()}: P({class_name})")


def adversarial_images_figure(x: np.ndarray, perturbation: np.ndarray, x_adv: np.ndarray,
                              eps: float) -> go.Figure:
    """Original, perturbation (scaled by 1/ε, signed colours) and adversarial image side by side.

    Args:
        x, x_adv: (C, H, W) in [0, 1]; perturbation: (C, H, W), at most ε per pixel.
    """
    e = max(eps, 1e-6)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.03,
                        subplot_titles=["original", f"perturbation (×{1 / e:.0f})", "adversarial"])
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
    """Each method's map before and after the attack, both over the original image x (C, H, W)."""
    maps = {}
    for m in before:
        maps[f"{m}|before"], maps[f"{m}|after"] = before[m], after[m]

    def title(n: str) -> str:
        k = n.split("|")[0]
        if n.endswith("before"):
            return f"{short(k)}: {pred_before}"
        return f"after: {pred_after}, ρ = {similarity[k]:.2f}"

    return overlay_figure(x, maps, title_of=title, cols=4, first=None, height_per_row=280)
