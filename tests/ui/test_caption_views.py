"""The captions' HTML (words shaded where the model was unsure, the preview's cards) and the
captioning page's figures (the word's map with its items' boxes, the small multiples)."""
from __future__ import annotations

import re

import numpy as np

from karp_models.ui import caption_views as cv
from karp_models.ui.figures import captioning as figs


def cells(html: str) -> list[str]:
    return re.findall(r"<span title=.*?</span>", html)


def test_words_are_shaded_exactly_where_the_model_was_unsure():
    probs = (0.9, 0.49, 0.5, 0.05)
    html = cv.words_html(["two", "sandals", "left", "of"], probs, selected=1)
    got = cells(html)
    assert len(got) == 4
    for c, p in zip(got, probs):
        shaded = "background:rgba(249,115,22,0.00)" not in c
        assert shaded == (p < cv.UNSURE), (c, p)
        assert f"{100 * p:.0f}%" in c                                    # its probability under it
    assert "outline" in got[1] and not any("outline" in c for c in got[:1] + got[2:])
    assert "margin-right:0.05em" in cv.words_html(["两", "只"], (0.9, 0.9), "zh")   # no spaces in Chinese


def test_the_preview_counts_right_captions_and_frames_each_card():
    images = np.zeros((3, 1, 64, 64), np.uint8)
    html = cv.preview_html(images, [("a", "bag"), (), ("two", "bags")], [(0.9, 0.8, 0.9), (0.7,), (0.6, 0.3, 0.9)],
                           ["a bag", "two coats", "two bags"], [True, False, True], step=120)
    assert "Captions of 3 test scenes at step 120" in html and "2 of 3 state their scene exactly" in html
    assert html.count("data:image/png;base64,") == 3
    assert html.count("✓") == 2 and html.count("✗") == 1
    assert "(nothing: it ended at once)" in html and "reference: two coats" in html
    photos = cv.preview_html(images[:1], [("a", "dog")], [(0.9, 0.9, 0.9)], ["a dog"], None, step=1)
    assert "state their scene" not in photos and "✓" not in photos and "✗" not in photos


def test_the_word_figure_outlines_the_named_items_and_the_strip_has_every_word():
    x = np.zeros((1, 64, 64), np.float32)
    att = np.full((8, 8), 1 / 64)
    fig = figs.word_figure(x, att, boxes=np.array([[0, 0, 16, 16], [40, 40, 56, 56]]))
    assert len(fig.layout.shapes) == 2 and fig.data[0].z.shape == (256, 256, 3)
    assert len(figs.word_figure(x, None).layout.shapes) == 0
    for T, rows in ((4, 1), (10, 1), (13, 2)):
        strip = figs.strip_figure(x, np.full((T, 8, 8), 1 / 64), [f"w{t}" for t in range(T)], selected=2)
        assert len(strip.data) == T
        titles = [a.text for a in strip.layout.annotations if a.text]
        assert len(titles) == T and titles[2].startswith("▶")
        domains = {tuple(strip.layout["yaxis" + ("" if i == 0 else str(i + 1))].domain) for i in range(T)}
        assert len(domains) == rows                                      # one row, two past PER_ROW
