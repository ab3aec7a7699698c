"""The app's one look, sized for a 1280x720 projector: font sizes, palettes, the diverging
attribution scale, the figure layout every builder shares, and the projector CSS for pages.

Figure builders import the constants and `layout`; pages call `projector_css()` once.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

# --- sizes (px): body text of figures, and labels of dense panels (ticks, small-multiple titles)

SIZE = 18
SMALL = 15
FONT = dict(size=SIZE)
SMALL_FONT = dict(size=SMALL)
TITLE_FONT = dict(size=SIZE + 2)
MONO = "Courier New, monospace"
MARGIN = dict(l=10, r=10, t=50, b=10)    # room for a title or subplot titles; else pass t=10

# --- palettes

# D3's category10 (plotly's default): one colour per class, per head, per gate
CATEGORY = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
# attention heads beyond ten (a GPT can have 16)
HEADS = CATEGORY + ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
# training runs in the order they start: the first two (blue, red) far apart
RUNS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
        "#7f7f7f", "#bcbd22")
BLUE, GREEN, GREY = "#1f77b4", "#16a34a", "#7f7f7f"
ACCENT, MUTED = "#2563eb", "#9ca3af"          # the answer among the other bars
RIGHT, WRONG = "#16a34a", "#dc2626"           # frames and marks: right / wrong
RIGHT_TEXT, WRONG_TEXT = "#15803d", "#b91c1c"  # the same, dark enough for text on white

# Attributions, diverging and transparent at 0 so the image shows through: blue = against the
# class, red = for it (RdBu's ends).
ATTRIBUTION_SCALE = [
    [0.0, "rgba(5,48,97,1)"], [0.2, "rgba(33,102,172,0.85)"], [0.4, "rgba(146,197,222,0.35)"],
    [0.5, "rgba(255,255,255,0)"], [0.6, "rgba(244,165,130,0.35)"], [0.8, "rgba(214,96,77,0.85)"],
    [1.0, "rgba(103,0,31,1)"]]
SIGNED_SCALE = "RdBu_r"      # opaque signed values: weights, perturbations
HEAT_SCALE = "Viridis"       # unsigned activations
WEIGHT_SCALE = "Blues"       # attention weights, counts


def rgba(css: str) -> tuple[float, float, float, float]:
    """'rgba(r,g,b,a)' -> (r, g, b, a) in [0, 1] (for matplotlib)."""
    r, g, b, a = (float(v) for v in css[css.index("(") + 1:-1].split(","))
    return r / 255, g / 255, b / 255, a


def diverging_css(v: float) -> str:
    """An opaque colour for v in [-1, 1]: blue below 0, white at 0, red above (HTML text views)."""
    v = max(-1.0, min(1.0, v))
    a = abs(v)
    if v >= 0:
        return f"rgb(255,{int(255 - 190 * a)},{int(255 - 200 * a)})"
    return f"rgb({int(255 - 200 * a)},{int(255 - 140 * a)},255)"


# --- figures


def layout(fig: go.Figure, *, height: int, title: str | None = None, **kw) -> go.Figure:
    """The shared layout: projector fonts, a title in TITLE_FONT when given, MARGIN by default.

    Keyword arguments go to fig.update_layout (margin=..., legend=..., ...)."""
    kw.setdefault("margin", MARGIN)
    if title is not None:
        kw["title"] = dict(text=title, font=TITLE_FONT)
    fig.update_layout(font=FONT, height=height, **kw)
    return fig


def big_axes(fig: go.Figure) -> go.Figure:
    """Projector-sized ticks, axis titles, legend and hover labels (Streamlit's chart theme would
    otherwise draw tick labels at 12 px)."""
    fig.update_xaxes(tickfont=dict(size=SIZE - 1), title_font=FONT)
    fig.update_yaxes(tickfont=dict(size=SIZE - 1), title_font=FONT)
    fig.update_layout(legend_font=FONT, hoverlabel_font=dict(size=SIZE - 1), title_font=TITLE_FONT)
    return fig


# --- pages

PROJECTOR_CSS = """<style>
[data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] li {font-size: 1.15rem;}
[data-testid="stMainBlockContainer"] [data-testid="stWidgetLabel"] p {font-size: 1.1rem;}
[data-testid="stMainBlockContainer"] [data-testid="stCaptionContainer"] p {font-size: 1.15rem;}
[data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] p {font-size: 2.6rem;
    line-height: 1.2;}
[data-testid="stMainBlockContainer"] [data-testid="stMetricLabel"] p {font-size: 1.15rem;}
</style>"""


def projector_css() -> None:
    """Projector-sized text, widget labels and metrics on this page (gone when another opens)."""
    st.html(PROJECTOR_CSS)
