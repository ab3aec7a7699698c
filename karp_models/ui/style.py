"""The app's one look, sized for a 1280x720 projector: font sizes, palettes, the diverging
attribution scale, the figure layout every builder shares, the page CSS, presentation mode and
right/wrong marks.

Figure builders import the constants and `layout`; app.py calls `page_css()` on every run (the
compact page, presentation mode, glossary hover); pages show charts with `chart()`, which
enlarges them in presentation mode, and may call `projector_css()` for larger text.
"""
from __future__ import annotations

import functools
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from karp_models.i18n import _

# --- sizes (px): body text of figures, and labels of dense panels (ticks, small-multiple titles)

SIZE = 18
SMALL = 15
FONT = dict(size=SIZE)
SMALL_FONT = dict(size=SMALL)
TITLE_FONT = dict(size=SIZE + 2)
MONO = "Courier New, monospace"
# matplotlib (the PNGs a page exports): its own DejaVu Sans for Latin, then the first CJK font
# installed for Chinese, glyph by glyph (matplotlib's font fallback); Debian's fonts-noto-cjk first
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei",
             "Droid Sans Fallback")
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


@functools.cache
def mpl_fonts() -> list[str]:
    """The font families for text in a matplotlib figure: ["DejaVu Sans", <a CJK font>], without
    the CJK one when none is installed (then Chinese shows as boxes: install fonts-noto-cjk)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [f for f in CJK_FONTS if f in installed][:1]


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
    # Streamlit's chart theme draws tick labels at 12 px unless the figure sets their size
    fig.for_each_xaxis(lambda a: a.tickfont.size is None and a.update(tickfont_size=SMALL))
    fig.for_each_yaxis(lambda a: a.tickfont.size is None and a.update(tickfont_size=SMALL))
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


# --- the whole app: a compact page, presentation mode, glossary terms

PRESENT_KEY = "karp_present"      # the top bar's switch (its widget key)
PRESENT_ON = "karp_present_on"    # session state: presentation mode on (kept apart from the widget)
PRESENT_SCALE = 1.25              # text, charts and pictures in presentation mode

PAGE_CSS = """<style>
/* room for the content on a 1280x720 projector: Streamlit's wide layout pads 6rem / 5rem */
[data-testid="stMainBlockContainer"] {padding: 3.5rem 1.75rem 4rem 1.75rem;}
/* a place the page scrolls to (the live run on Train) clears Streamlit's header */
[id^="karp-"] {scroll-margin-top: 4.5rem;}
/* a glossary term: dotted underline, its definition in a large tooltip on hover or focus */
.karp-term {border-bottom: 2px dotted currentColor; cursor: help; position: relative;}
.karp-term:hover::after, .karp-term:focus::after {
    content: attr(data-def); position: absolute; left: 0; top: 1.5em; z-index: 1000;
    width: max-content; max-width: min(26rem, 80vw); padding: 0.5rem 0.75rem;
    background: #1f2937; color: #fff; border-radius: 0.4rem; box-shadow: 0 4px 14px #0004;
    font-size: 1rem; font-weight: 400; font-style: normal; line-height: 1.4; white-space: normal;}
/* the presentation-mode switch sits in the top bar, left of Streamlit's menu, on every page */
.st-key-karp_present {position: fixed; top: 0.9rem; right: 4rem; z-index: 999991; width: auto !important;}
/* a multiselect shows every chosen option: its chips wrap onto more lines instead of scrolling
   sideways out of sight (Streamlit keeps them on one 40px line) */
[data-testid="stMultiSelect"] [role="group"]:has(> [data-testid="stMultiSelectTagsContainer"]) {
    height: auto; max-height: none; min-height: 2.5rem;}
[data-testid="stMultiSelectTagsContainer"] {flex-wrap: wrap; overflow: visible; height: auto;
    row-gap: 0.25rem; padding-top: 0.25rem; padding-bottom: 0.25rem;}
/* a button's or a metric's words wrap onto another line instead of ending in "…" (Streamlit cuts
   them to one line, which a projector's larger text overflows) */
[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"],
[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * {
    white-space: normal !important; overflow: visible !important; text-overflow: clip !important;}
[data-testid^="stBaseButton"] {height: auto;}
</style>"""

PRESENT_CSS = """<style>
/* presentation mode: Streamlit sizes everything in rem, so a larger root enlarges it all */
html {font-size: 20px;}
</style>"""


def wrap_buttons(key: str) -> None:
    """Let the buttons of the pills or segmented control with widget key `key` wrap onto more
    lines instead of scrolling sideways out of sight (a caption's words in a narrow column)."""
    st.html(f"<style>.st-key-{key} [role='radiogroup'] {{flex-wrap: wrap; overflow-x: visible;}}</style>")


def present_switch(label: str, help: str) -> None:
    """The presentation-mode switch (app.py, every run). Its value lives in the plain session key
    PRESENT_ON, given back to the switch on every run: Streamlit does not carry a widget's value over a
    page change made by st.switch_page (the lesson player's Start, Next and Back), so the switch alone
    would fall back to off there while the browser still showed it on."""
    ss = st.session_state
    if PRESENT_ON not in ss:
        ss[PRESENT_ON] = bool(ss.get(PRESENT_KEY, False))
    ss[PRESENT_KEY] = ss[PRESENT_ON]

    def keep() -> None:
        ss[PRESENT_ON] = bool(ss[PRESENT_KEY])

    st.toggle(label, key=PRESENT_KEY, help=help, on_change=keep)


def presenting() -> bool:
    """True when this session has presentation mode on."""
    return bool(st.session_state.get(PRESENT_ON, st.session_state.get(PRESENT_KEY, False)))


def page_css() -> None:
    """The CSS of every page (app.py calls it on every run), with presentation mode's."""
    st.html(PAGE_CSS + (PRESENT_CSS if presenting() else ""))


def px(n: int) -> int:
    """A picture's width in pixels: `n`, or larger in presentation mode."""
    return round(n * PRESENT_SCALE) if presenting() else n


def _scale_fonts(node: Any, k: float, in_font: bool = False) -> None:
    """Multiply every font size in a figure's dict (layout or trace) by k, in place."""
    if isinstance(node, dict):
        for key, v in node.items():
            if key == "size" and in_font and isinstance(v, (int, float)):
                node[key] = round(v * k, 1)
            elif isinstance(v, (dict, list)):
                _scale_fonts(v, k, key.endswith("font"))
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, dict):
                _scale_fonts(v, k, in_font)


def scaled(fig: go.Figure, k: float) -> dict:
    """The figure as a dict with every font, its height and its top and bottom margins k times
    larger (the original is untouched: figures are shared through ui.cache)."""
    d = fig.to_dict()
    layout = d.setdefault("layout", {})
    layout.setdefault("font", {}).setdefault("size", 12)       # plotly's default
    _scale_fonts(layout, k)
    for trace in d.get("data", []):
        for key, v in trace.items():
            if key.endswith("font") and isinstance(v, dict) and isinstance(v.get("size"), (int, float)):
                v["size"] = round(v["size"] * k, 1)
            elif key in ("colorbar", "marker") and isinstance(v, dict):
                _scale_fonts(v, k)
    if isinstance(layout.get("height"), (int, float)):
        layout["height"] = round(layout["height"] * k)
    margin = layout.get("margin") or {}
    for side in ("t", "b"):                       # room for the larger titles and tick labels
        if isinstance(margin.get(side), (int, float)):
            margin[side] = round(margin[side] * k)
    return d


def chart(fig: go.Figure, **kwargs: Any) -> Any:
    """st.plotly_chart, with fonts and height enlarged in presentation mode. Streamlit turns a
    figure into a dict anyway, so the enlarged copy costs no more than the plain chart."""
    return st.plotly_chart(scaled(fig, PRESENT_SCALE) if presenting() else fig, **kwargs)


# --- right and wrong, in words and colour (no emoji: many classroom PCs have no emoji font)

def mark(right: bool) -> str:
    """Markdown for a right / wrong mark."""
    return _(":green[**✓ right**]") if right else _(":red[**✗ wrong**]")


def right_wrong(rows: Any, column: str) -> Any:
    """A table (rows as dicts, or a DataFrame) whose `column` holds _('right') / _('wrong'), with
    those words coloured: a pandas Styler for st.dataframe."""
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    colour = {_("right"): f"color: {RIGHT_TEXT}; font-weight: 600",
              _("wrong"): f"color: {WRONG_TEXT}; font-weight: 600"}
    return df.style.map(lambda v: colour.get(v, ""), subset=[column])
