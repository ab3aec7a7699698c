"""HTML views of captions, shared by the Train page's live preview and the Image captioning page:
a caption's words shaded by how sure the model was of each, with the probability under each
word, and the preview's cards of sample scenes. Pure functions of their arguments (no Streamlit),
so a test can read what they show.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from karp_models.i18n import _
from karp_models.ui import style
from karp_models.ui.images import display

UNSURE = 0.5               # a word written with less probability than this is shaded


def png_uri(img: np.ndarray, side: int) -> str:
    """An image (C, H, W) or (H, W) as a data: URI of a PNG about `side` pixels wide."""
    buf = io.BytesIO()
    Image.fromarray(display(img, side=side)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _shade(p: float) -> str:
    """A background for a word written with probability p: none when sure, orange when unsure."""
    a = 0.0 if p >= UNSURE else 0.25 + 0.6 * (UNSURE - p) / UNSURE
    return f"rgba(249,115,22,{a:.2f})"


def words_html(words: Sequence[str], probs: Sequence[float], language: str = "en", *,
               size: int = 22, show_probs: bool = True, selected: int | None = None,
               prefix: str = "") -> str:
    """A caption as a row of words, each shaded by how unsure the model was (below UNSURE) and,
    with show_probs, its probability in % under it; `selected` (a word's index) is outlined.
    Chinese words sit side by side without spaces, as they are written. `prefix`: HTML put
    before the first word (a mark)."""
    gap = "0.05em" if language == "zh" else "0.35em"
    cells = []
    for t, w in enumerate(words):
        p = probs[t] if t < len(probs) else float("nan")
        ring = f"outline:3px solid {style.ACCENT};" if t == selected else ""
        under = (f"<div style='font-size:{max(12, size * 6 // 10)}px; color:#4b5563'>{100 * p:.0f}%</div>"
                 if show_probs and p == p else "")
        tip = _("probability {p:.1%}").format(p=p) if p == p else ""
        cells.append(f"<span title='{html.escape(tip)}' style='display:inline-block; text-align:center; "
                     f"margin-right:{gap}; padding:0 0.15em; border-radius:4px; {ring}"
                     f"background:{_shade(p) if p == p else 'none'}'>"
                     f"<div style='font-size:{size}px; line-height:1.25'>{html.escape(w)}</div>{under}</span>")
    return "<div style='line-height:1.2'>" + prefix + "".join(cells) + "</div>"


def preview_html(images: np.ndarray, words: Sequence[Sequence[str]], probs: Sequence[Sequence[float]],
                 references: Sequence[str], correct: Sequence[bool] | None, step: int,
                 language: str = "en", columns: int = 3, size: int = 19) -> str:
    """The Train page's live captions: one card per scene (the image, the model's greedy caption
    shaded word by word, a right/wrong frame when the scene is known, the first reference).

    Args:
        images: (n, C, H, W) uint8; words, probs: per scene its words and their probabilities;
        references: per scene a reference caption as written; correct: per scene whether the
        caption states it exactly (None for photos, which have no grammar).
        size: the text's size in px (the pictures and notes scale with it).
    """
    small, side = round(size * 15 / 19), round(size * 96 / 19)
    n = len(words)
    head = _("Captions of {n} test scenes at step {step:,}").format(n=n, step=step)
    if correct is not None:
        head += " · " + _("{k} of {n} state their scene exactly").format(k=sum(correct), n=n)
    cards = []
    for i in range(n):
        ok = None if correct is None else bool(correct[i])
        colour = "#d1d5db" if ok is None else style.RIGHT if ok else style.WRONG
        mark = "" if ok is None else (f"<b style='font-size:{size}px; color:{colour}; margin-right:0.3em'>"
                                      f"{'✓' if ok else '✗'}</b>")
        nothing = _("(nothing: it ended at once)")
        said = words_html(words[i], probs[i], language, size=size, show_probs=False, prefix=mark) \
            if words[i] else f"{mark}<i>{html.escape(nothing)}</i>"
        reference = _("reference: {text}").format(text=references[i])
        cards.append(
            f"<div style='display:flex; gap:10px; align-items:flex-start; border:3px solid {colour}; "
            f"border-radius:8px; padding:6px'>"
            f"<img src='{png_uri(images[i], side)}' width='{side}' height='{side}' style='image-rendering:pixelated'>"
            f"<div>{said}"
            f"<div style='font-size:{small}px; color:#4b5563; margin-top:4px'>"
            f"{html.escape(reference)}</div></div></div>")
    legend = _("Shaded words: the model gave them less than {p:.0%} probability.").format(p=UNSURE)
    return (f"<div style='font-size:{size}px; font-weight:600; margin-bottom:6px'>{html.escape(head)}</div>"
            f"<div style='display:grid; grid-template-columns:repeat({columns}, minmax(0, 1fr)); gap:8px'>"
            + "".join(cards) + f"</div><div style='font-size:{small}px; color:#4b5563; margin-top:4px'>"
            f"{html.escape(legend)}</div>")


def caption_line_html(title: str, words: str, ok: bool | None, why: str, size: int = 19) -> str:
    """One caption: a line with what wrote it and the verdict (`size` px), coloured right (True),
    wrong (False) or unknown (None), then its words (words_html)."""
    colour = "#4b5563" if ok is None else style.RIGHT_TEXT if ok else style.WRONG_TEXT
    mark = "" if ok is None else "✓ " if ok else "✗ "
    return (f"<div style='margin-bottom:8px'><div style='font-size:{size}px'><b>{html.escape(title)}</b> · "
            f"<span style='font-weight:600; color:{colour}'>{mark}{html.escape(why)}</span></div>"
            f"{words}</div>")
