"""Views of character models on text: attention heatmaps, a head view and a model view, next-character
top-5 tables, text coloured by an RNN cell, gate saturation. Pure: arrays in, plotly figures or
self-contained HTML out (no CDN, no st.* call).

Cites: Vig 2019 BertViz (head view: pick a token, see where it attends; model view: all layers x
heads), Karpathy 2015 char-rnn post (top-5 under each character; text coloured by a cell), Karpathy,
Johnson, Fei-Fei 2015 (Fig. 3).
"""
from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.introspect import neurons
from karp_models.introspect import text as tx
from karp_models.ui import style

# ---------------------------------------------------------------------------- characters


def show_char(ch: str) -> str:
    """A character as a label: space as ␣, newline as ⏎, tab as ⇥, another invisible character (a
    control, format or other space character) by its code point (U+3000), a combining mark on ◌."""
    if ch in _SHOWN:
        return _SHOWN[ch]
    cat = unicodedata.category(ch) if len(ch) == 1 else ""
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"):
        return f"U+{ord(ch):04X}"
    return "◌" + ch if cat in ("Mn", "Me") else ch


_SHOWN = {" ": "␣", "\n": "⏎", "\t": "⇥"}


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def _md(s: str) -> str:
    """`s` shown character by character (show_char), Markdown's special characters escaped."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in "".join(show_char(c) for c in s))


def char_list(chars: str, limit: int = 40) -> str:
    """Characters for a Markdown message, readable (not Python's quote style): in bold, an em space apart, each
    shown by show_char (␣ for a space, U+3000 for an ideographic one); the first `limit`, then how many more."""
    more = len(chars) - limit
    return "**" + "\u2003".join(_md(c) for c in chars[:limit]) + "**" + (
        "" if more <= 0 else " " + _("and {n} more").format(n=more))


def replaced_list(pairs: Sequence[tuple[str, str]], limit: int = 20) -> str:
    """(typed, read as) pairs for a Markdown message, **Ａ→a**, an em space apart; the first `limit`."""
    return "\u2003".join(f"**{_md(a)}→{_md(b)}**" for a, b in pairs[:limit]) + ("" if len(pairs) <= limit else " …")


# ---------------------------------------------------------------------------- attention


def sharpest_head(att: np.ndarray) -> tuple[int, int]:
    """(layer, head) whose rows have the lowest mean entropy: the most decided head, a good first look."""
    ent = -(att * np.log(np.clip(att, 1e-12, None))).sum(-1).mean(-1)   # (L, H)
    layer, head = np.unravel_index(int(np.argmin(ent)), ent.shape)
    return int(layer), int(head)


def attention_heatmap(att: np.ndarray, chars: str, title: str = "") -> go.Figure:
    """One head's (T, T) attention: row = the character looking, column = the character looked at."""
    T = len(chars)
    labels = [show_char(c) for c in chars]
    hover = [[f"{labels[q]} (#{q}) → {labels[k]} (#{k})" for k in range(T)] for q in range(T)]
    fig = go.Figure(go.Heatmap(z=att, colorscale=style.WEIGHT_SCALE, zmin=0, zmax=float(max(att.max(), 1e-6)),
                               customdata=hover, hovertemplate="%{customdata}: %{z:.3f}<extra></extra>",
                               colorbar=dict(title=_("weight"))))
    size = 20 if T <= 24 else 17 if T <= 40 else 13 if T <= 64 else 9   # readable from the back
    ticks = dict(tickmode="array", tickvals=list(range(T)), ticktext=labels,
                 tickfont=dict(size=size, family=style.MONO))
    fig.update_xaxes(title=_("attends to (key)"), side="top", tickangle=0, **ticks)
    fig.update_yaxes(title=_("character (query)"), autorange="reversed", scaleanchor="x", **ticks)
    return style.layout(fig, height=max(520, min(1000, (size + 8) * T + 200)), title=title,
                        margin=dict(l=10, r=10, t=110 if title else 80, b=10))


def model_view(att: np.ndarray, chars: str) -> go.Figure:
    """Every layer (rows) x head (columns) as small heatmaps on one colour scale (BertViz's model view)."""
    L, H, T = att.shape[:3]
    fig = make_subplots(rows=L, cols=H, horizontal_spacing=0.02, vertical_spacing=0.03,
                        row_titles=[_("layer {n}").format(n=i) for i in range(L)],
                        column_titles=[_("head {n}").format(n=j) for j in range(H)])
    labels = [show_char(c) for c in chars]
    hover = [[f"{labels[q]} → {labels[k]}" for k in range(T)] for q in range(T)]
    for i in range(L):
        for j in range(H):
            fig.add_trace(go.Heatmap(z=att[i, j], coloraxis="coloraxis", customdata=hover,
                                     hovertemplate=_("layer {layer} head {head}").format(layer=i, head=j)
                                     + "<br>%{customdata}: %{z:.3f}<extra></extra>"),
                          row=i + 1, col=j + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(coloraxis=dict(colorscale=style.WEIGHT_SCALE, cmin=0, cmax=1, colorbar=dict(title=_("weight"))),
                      font=style.FONT, height=190 * L + 80, margin=dict(l=10, r=60, t=60, b=10))
    return fig


_HEAD_VIEW = """<!doctype html><html><head><meta charset="utf-8"><style>
body{font-family:system-ui,sans-serif;margin:6px;color:#222}
#text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:24px;line-height:1.9;white-space:pre-wrap;
      word-break:break-all;cursor:pointer}
#text span{padding:1px 0;border-radius:3px}
#text span.q{outline:3px solid #000}
.heads button{font-size:17px;margin:2px 4px 8px 0;padding:4px 10px;border-radius:6px;border:2px solid;cursor:pointer}
.heads button.off{background:#fff !important;color:#999 !important}
#info{font-size:17px;margin:6px 0 10px 0;min-height:1.4em}
label{font-size:16px}
</style></head><body>
<div class="heads" id="heads"></div>
<label><input type="checkbox" id="boost"> <span id="boostlabel"></span></label>
<div id="info"></div>
<div id="text"></div>
<script>
const D = __DATA__, T = D.words;   // T: the page's words, in its language
document.getElementById('boostlabel').textContent = T.boost;
const heads = D.heads, chars = D.chars, W = D.w;   // W[h][q][k], k <= q, 0..255
const on = heads.map(() => true);
let q = D.query, locked = false;
function rgb(hex){return [1,3,5].map(i => parseInt(hex.substr(i,2),16));}
const cols = D.colors.map(rgb);
const hb = document.getElementById('heads');
heads.forEach((h, i) => {
  const b = document.createElement('button'); b.textContent = T.head.replace('{n}', h);
  b.style.background = D.colors[i]; b.style.borderColor = D.colors[i]; b.style.color = '#fff';
  b.onclick = () => {on[i] = !on[i]; b.classList.toggle('off', !on[i]); draw();};
  hb.appendChild(b);
});
const box = document.getElementById('text');
const spans = chars.map((c, k) => {
  const s = document.createElement('span');
  s.textContent = c === '\\n' ? '\u23ce\\n' : c;
  s.onmouseenter = () => {if (!locked) {q = k; draw();}};
  s.onclick = () => {q = k; locked = true; draw();};
  box.appendChild(s); return s;
});
document.getElementById('boost').onchange = draw;
function draw(){
  const boost = document.getElementById('boost').checked;
  let best = -1, bestW = -1;
  spans.forEach((s, k) => {
    s.className = k === q ? 'q' : '';
    if (k > q) {s.style.background = 'transparent'; s.style.color = '#bbb'; s.title = T.masked; return;}
    let r = 255, g = 255, b = 255, tips = [];
    heads.forEach((h, i) => {
      if (!on[i]) return;
      let w = W[i][q][k] / 255; tips.push(T.head.replace('{n}', h) + ': ' + w.toFixed(3));
      if (w > bestW) {bestW = w; best = k;}
      if (boost) w = Math.sqrt(w);
      r -= w * (255 - cols[i][0]); g -= w * (255 - cols[i][1]); b -= w * (255 - cols[i][2]);
    });
    r = Math.max(0, r); g = Math.max(0, g); b = Math.max(0, b);
    s.style.background = `rgb(${r|0},${g|0},${b|0})`;
    s.style.color = (r + g + b) < 330 ? '#fff' : '#222';
    s.title = tips.join('\\n');
  });
  const esc = c => c.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const show = c => c === ' ' ? '\u2423' : c === '\\n' ? '\u23ce' : esc(c);
  document.getElementById('info').innerHTML =
    T.attends.replace('{char}', `<b>${show(chars[q])}</b>`).replace('{q}', q)
             .replace('{best}', `<b>${best >= 0 ? show(chars[best]) : '-'}</b>`) +
    (best >= 0 ? T.weight.replace('{k}', best).replace('{w}', bestW.toFixed(2)) : '') +
    ' &nbsp;·&nbsp; ' + (locked ? T.locked : T.hover);
}
draw();
</script></body></html>"""


def head_view_height(chars: str) -> int:
    """Pixels the head view needs for `chars` at 24 px: 45 narrow characters a row (a wide, CJK one counts two),
    plus its newlines, plus the buttons and the line of information; at most 900."""
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in chars)
    return min(900, 160 + 46 * (1 + width // 45 + chars.count("\n")))


def head_view_html(att_layer: np.ndarray, chars: str, heads: Sequence[int] | None = None,
                   query: int | None = None) -> str:
    """A self-contained HTML page: hover or click a character and the text behind it lights up in each
    head's colour, as strongly as that head attends there (BertViz's head view, drawn on the text itself).

    Args:
        att_layer: (n_head, T, T) attention of one layer.
        query: the character selected at first (default: the last one).
    """
    H, T = att_layer.shape[:2]
    heads = list(range(H)) if heads is None else list(heads)
    q8 = np.rint(np.clip(att_layer, 0, 1) * 255).astype(int)
    w = [[q8[h, q, :q + 1].tolist() for q in range(T)] for h in heads]    # lower triangle only
    data = {"heads": heads, "chars": list(chars), "w": w, "query": T - 1 if query is None else int(query),
            "colors": [style.HEADS[h % len(style.HEADS)] for h in heads],
            "words": {"boost": _("boost faint weights (square root)"), "head": _("head {n}"),
                      "masked": _("in the future: masked"),
                      "attends": _("Character {char} (#{q}) attends most to {best}"),
                      "weight": _(" (#{k}, weight {w})"), "locked": _("click another character to move"),
                      "hover": _("hover a character, click to keep it")}}
    return _HEAD_VIEW.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))

# ---------------------------------------------------------------------------- next character


def topk_html(nc: tx.NextChar, start: int = 0, length: int = 60) -> str:
    """Karpathy's char-rnn view: each character with the model's 5 guesses for the next one beneath it,
    shaded by probability; the guess that is right is outlined. One column per character, wrapping
    to the width of the page like text (no fixed number a row: nothing runs past the edge)."""
    end = min(len(nc.text), start + length)
    cols = []
    for t in range(start, end):
        cells = [f"<div class='k5h' title='#{t}'>{html.escape(show_char(nc.text[t]))}</div>"]
        for r in range(nc.top_probs.shape[1]):
            p, ch = float(nc.top_probs[t, r]), nc.top_chars[t][r]
            right = t + 1 < len(nc.text) and nc.text[t + 1] == ch
            look = f"background:rgba(34,139,34,{p:.2f});" + ("outline:3px solid #c00;" if right else "")
            color = "#fff" if p > 0.55 else "#222"
            cells.append(f"<div style='{look}color:{color}' title='{p:.3f}'>{html.escape(show_char(ch))}</div>")
        cols.append(f"<div class='k5c'>{''.join(cells)}</div>")
    css = ("<style>.k5{display:flex;flex-wrap:wrap;gap:2px;row-gap:14px;"
           "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1.25rem}"
           ".k5c{display:flex;flex-direction:column;gap:2px;min-width:1.4em;text-align:center}"
           ".k5c div{padding:1px 2px}.k5 .k5h{background:#eee}</style>")
    return css + f"<div class='k5'>{''.join(cols)}</div>"


def surprise_figure(nc: tx.NextChar, window: tuple[int, int] | None = None) -> go.Figure:
    """Probability the model gave to the character that really came next, at every position."""
    x = np.arange(len(nc.text) - 1)
    labels = [f"{show_char(nc.text[t])} → {show_char(nc.text[t + 1])}" for t in x]
    fig = go.Figure(go.Scatter(x=x, y=nc.actual[:-1], mode="lines", line=dict(width=1.5), customdata=labels,
                               hovertemplate="#%{x} %{customdata}: %{y:.2f}<extra></extra>"))
    if window:
        fig.add_vrect(x0=window[0], x1=window[1], fillcolor="orange", opacity=0.2, line_width=0)
    return style.layout(fig, height=260, title=_("Probability given to the real next character"),
                        margin=dict(l=10, r=10, t=40, b=10), xaxis_title=_("position in the text"),
                        yaxis=dict(range=[0, 1]))

# ---------------------------------------------------------------------------- neurons


def neuron_text_html(text: str, values: np.ndarray, scale: float | None = None) -> str:
    """The text with each character's background coloured by a cell's value there (Karpathy's post)."""
    scale = float(scale or max(np.abs(values).max(), 1e-6))
    spans = []
    for ch, v in zip(text, values):
        tip = f"{v:+.3f}"
        shown = "⏎<br>" if ch == "\n" else html.escape(ch).replace(" ", "&nbsp;")
        spans.append(f"<span style='background:{style.diverging_css(v / scale)}' title='{tip}'>{shown}</span>")
    return ("<div style='font-family:ui-monospace,Menlo,Consolas,monospace;font-size:20px;line-height:1.7;"
            "word-break:break-all'>" + "".join(spans) + "</div>")


def color_legend_html(scale: float) -> str:
    stops = "".join(f"<span style='background:{style.diverging_css(v)};padding:2px 10px'>{v * scale:+.2f}</span>"
                    for v in (-1, -0.5, 0, 0.5, 1))
    words = html.escape(_("colour = value:"))      # outside the f-string: pybabel does not look inside one
    return f"<div style='font-size:16px;margin:4px 0'>{words} {stops}</div>"


def trace_figure(values: np.ndarray, signal: np.ndarray, text: str, cell_label: str, signal_name: str) -> go.Figure:
    """The cell's value and the signal it is compared with, along the text (two y axes)."""
    x = np.arange(len(values))
    labels = [show_char(c) for c in text]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=x, y=values, name=cell_label, line=dict(width=1.5, color=style.CATEGORY[3]),
                             customdata=labels, hovertemplate="#%{x} %{customdata}: %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=signal, name=signal_name, line=dict(width=1.5, color="#555", dash="dot"),
                             hoverinfo="skip"), secondary_y=True)
    fig.update_layout(font=style.FONT, height=300, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=1.15), xaxis_title=_("position in the text"))
    fig.update_yaxes(title_text=_("cell value"), secondary_y=False)
    fig.update_yaxes(title_text=signal_name, secondary_y=True, tickmode="auto", nticks=5, showgrid=False)
    return fig


def gate_figure(sats: Sequence[neurons.GateSaturation], layer: int = 0) -> go.Figure:
    """One dot per cell and gate: fraction of steps left-saturated (< 0.1) against right-saturated (> 0.9)."""
    fig = make_subplots(rows=1, cols=len(sats), subplot_titles=[_(s.name) for s in sats],
                        shared_yaxes=True, horizontal_spacing=0.04)
    for j, s in enumerate(sats):
        H = s.left.shape[1]
        fig.add_trace(go.Scatter(x=s.left[layer], y=s.right[layer], mode="markers", name=_(s.name),
                                 marker=dict(size=6, opacity=0.6, color=style.HEADS[j]),
                                 customdata=np.arange(H),
                                 hovertemplate=_("cell %{customdata}<br>< 0.1: %{x:.0%}<br>> 0.9: %{y:.0%}")
                                 + "<extra></extra>"),
                      row=1, col=j + 1)
        fig.add_trace(go.Scatter(x=[0, 1], y=[1, 0], mode="lines", line=dict(color="#bbb", dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=1, col=j + 1)
        fig.update_xaxes(range=[-0.02, 1.02], title_text=_("fraction < 0.1"), tickformat=".0%", row=1, col=j + 1)
    fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%")
    fig.update_yaxes(title_text=_("fraction > 0.9"), row=1, col=1)
    fig.update_layout(font=style.FONT, height=420, showlegend=False, margin=dict(l=10, r=10, t=50, b=10))
    return fig
