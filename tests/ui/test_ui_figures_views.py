"""ui.figures.evaluate, .predict, .vit, .text, .datasets: real properties of what they draw."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from karp_models.introspect import evaluate as ev
from karp_models.introspect.vit import ViTAttention
from karp_models.ui import style
from karp_models.ui.figures import datasets as dsf
from karp_models.ui.figures import evaluate as evf
from karp_models.ui.figures import predict as prf
from karp_models.ui.figures import text as txf
from karp_models.ui.figures import vit as vif

CLASSES = ("cat", "dog", "eel")

# ---------------------------------------------------------------------------- evaluate


def test_confusion_matrix_cells_are_clickable_and_labelled():
    cm = np.array([[5, 1, 0], [2, 7, 0], [0, 0, 9]])
    fig = evf.confusion_figure(cm, CLASSES, normalised=False, selected=(1, 0))
    heat, cells = fig.data
    np.testing.assert_allclose(heat.z, np.sqrt(cm))
    assert heat.text[1][0] == "2" and heat.text[0][2] == ""             # empty cells unlabelled
    assert len(cells.x) == 9 and list(cells.customdata[3]) == [1, 0]
    assert list(cells.selectedpoints) == [3]                           # row-major: (1, 0) is cell 3
    assert tuple(fig.layout.yaxis.range) == (2.5, -0.5)                # true classes top-down
    assert fig.layout.xaxis.tickfont.size == style.SIZE - 1            # projector-sized ticks
    share = evf.confusion_figure(cm, CLASSES, normalised=True)
    assert share.data[0].text[1][1] == "78%"


def test_reliability_and_projector():
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 1, 2])
    fig = evf.reliability_figure(ev.reliability(probs, labels, n_bins=5))
    assert [type(t).__name__ for t in fig.data] == ["Bar", "Scatter", "Scatter", "Bar"]
    assert fig.layout.yaxis2.type == "log" and sum(fig.data[3].y) == 4
    coords = np.arange(8, dtype=float).reshape(4, 2)
    pred = probs.argmax(1)
    proj = evf.projector_figure(coords, labels, pred, probs, CLASSES, "true class")
    assert [t.name for t in proj.data] == list(CLASSES)
    dog = proj.data[1]
    assert list(dog.customdata) == [1, 2] and list(dog.marker.symbol) == ["x", "circle"]
    assert dog.marker.color == style.CATEGORY[1] and list(dog.x) == [2.0, 4.0]


def test_per_class_frame_and_disagreements():
    cm = np.array([[5, 1, 0], [2, 7, 0], [0, 0, 9]])
    df = evf.per_class_frame(cm, CLASSES)
    assert list(df["most often mistaken for"]) == ["dog (1)", "cat (2)", "—"]
    per = pd.DataFrame({"A right, B wrong": [1, 2, 0], "B right, A wrong": [0, 1, 3]}, index=list(CLASSES))
    fig = evf.disagreement_figure(per)
    assert [t.name for t in fig.data] == list(per.columns) and list(fig.data[1].y) == [0, 1, 3]
    assert fig.layout.barmode == "group"

# ---------------------------------------------------------------------------- predict


def test_topk_bars_put_the_answer_on_top_in_the_accent_colour():
    fig = prf.topk_figure([("Sneaker", 0.7), ("Sandal", 0.2), ("Bag", 0.1)])
    bar = fig.data[0]
    assert list(bar.y) == ["Bag", "Sandal", "Sneaker"] and list(bar.text) == ["10.0%", "20.0%", "70.0%"]
    assert list(bar.marker.color) == [style.MUTED, style.MUTED, style.ACCENT]
    assert tuple(fig.layout.xaxis.range) == (0, 1.12)


def test_filters_grid_numbers_each_filter_at_its_place():
    w = np.random.default_rng(0).normal(size=(10, 1, 5, 5)).astype(np.float32)
    fig = prf.filters_figure(w)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap) and (heat.zmin, heat.zmax) == (-1, 1)
    z, idx = np.asarray(heat.z, float), np.asarray(heat.customdata)
    gap = 1
    assert z.shape == (2 * 5 + gap, 8 * 5 + 7 * gap)                  # 8 per row, 2 rows
    assert idx[0, 0] == 0 and idx[0, 6] == 1 and idx[6, 0] == 8 and idx[5, 0] == -1
    np.testing.assert_allclose(np.nanmax(np.abs(z[:5, :5])), 1.0)       # each filter on its own scale
    rgb = prf.filters_figure(np.random.default_rng(1).normal(size=(4, 3, 3, 3)))
    assert isinstance(rgb.data[0], go.Image) and rgb.data[0].z.dtype == np.uint8


def test_feature_maps_grid_and_channel():
    maps = np.random.default_rng(2).random((5, 4, 4)).astype(np.float32)
    fig = prf.maps_figure(maps)
    idx = np.asarray(fig.data[0].customdata)
    assert idx.shape == (2 * 4 + 1, 3 * 4 + 2)                         # 3 columns (ceil sqrt 5)
    assert idx[0, 0] == 0 and idx[0, 10] == 2 and idx[5, 5] == 4 and idx[5, 10] == -1
    ch = prf.channel_figure(maps[3], "channel 3")
    assert ch.layout.title.text == "channel 3" and np.array_equal(ch.data[0].z, maps[3])
    assert list(prf.objective_figure([1.0, 2.0]).data[0].y) == [1.0, 2.0]

# ---------------------------------------------------------------------------- ViT


def vit_attention() -> ViTAttention:
    rng = np.random.default_rng(3)
    cls = rng.random((2, 3, 2, 2)).astype(np.float32) / 8                 # (L, H, gh, gw)
    return ViTAttention(probs=np.array([0.1, 0.7, 0.2]), cls_maps=cls,
                        cls_self=1 - cls.reshape(2, 3, -1).sum(-1), rollout_map=rng.random((2, 2)),
                        rollout_self=0.3, grid=(2, 2), patch_size=4)


def test_vit_figures():
    att = vit_attention()
    pred = vif.prediction_figure(att.probs, CLASSES, label=2)
    bar = pred.data[0]
    assert list(bar.y) == ["cat", "eel", "dog"] and list(bar.text) == ["10.0%", "20.0%", "70.0%"]
    assert list(bar.marker.color) == [style.BLUE, style.GREEN, style.BLUE]
    image = np.random.default_rng(4).random((8, 8))
    grid = vif.head_grid_figure(image, att)
    assert len(grid.data) == 6 and grid.data[0].z.shape == (32, 32, 3)
    assert grid.layout.annotations[4].text == f"L1 H1: CLS keeps {att.cls_self[1, 1]:.0%}"  # numbered from 0, as the text pages
    roll = vif.rollout_figure(image, att)
    assert [a.text for a in roll.layout.annotations][1] == "rollout, 2 layers"
    np.testing.assert_array_equal(roll.data[0].z[:4, :4, 0], np.rint(image[0, 0] * 255))

# ---------------------------------------------------------------------------- text


def test_attention_views():
    att = np.tril(np.ones((2, 2, 4, 4)))
    att /= att.sum(-1, keepdims=True)
    heat = txf.attention_heatmap(att[1, 0], "ab c", title="layer 1 head 0")
    assert list(heat.layout.xaxis.ticktext) == ["a", "b", "␣", "c"]
    assert heat.layout.title.text == "layer 1 head 0" and heat.layout.yaxis.autorange == "reversed"
    mv = txf.model_view(att, "ab c")
    assert len(mv.data) == 4 and mv.layout.coloraxis.cmax == 1
    sharp = att.copy()
    sharp[1, 1] = np.eye(4)
    assert txf.sharpest_head(sharp) == (1, 1)
    html = txf.neuron_text_html("ab", np.array([1.0, -1.0]))
    assert style.diverging_css(1.0) in html and style.diverging_css(-1.0) in html


def test_characters_are_shown_readably_in_messages_and_labels():
    assert [txf.show_char(c) for c in " \n\t\u3000\u200b\u0301a月"] == ["␣", "⏎", "⇥", "U+3000", "U+200B", "◌\u0301",
                                                                    "a", "月"]
    assert txf.char_list("Hi *") == "**H\u2003i\u2003␣\u2003\\***"       # bold, em spaces, Markdown escaped
    assert txf.char_list("abcdef", limit=4).endswith("\u2003d** and 2 more")
    assert txf.replaced_list([(",", "，"), ("Ａ", "a")]) == "**,→，**\u2003**Ａ→a**"
    assert txf.head_view_height("x" * 44) == txf.head_view_height("月" * 22) < txf.head_view_height("月" * 23)
    heat = txf.attention_heatmap(np.eye(3), "月\u3000光")
    assert list(heat.layout.xaxis.ticktext) == ["月", "U+3000", "光"]


def test_style_colours():
    assert style.diverging_css(0) == "rgb(255,255,255)"
    assert style.diverging_css(5) == style.diverging_css(1) == "rgb(255,65,55)"
    assert style.rgba("rgba(255,0,51,0.5)") == (1.0, 0.0, 0.2, 0.5)

# ---------------------------------------------------------------------------- datasets


def test_class_montage_rows_hold_their_class():
    y = torch.tensor([0, 1, 2] * 4)
    x = (y[:, None, None, None] * 100 + 10).to(torch.uint8).expand(12, 1, 5, 5).contiguous()
    fig = dsf.class_montage(x, y, CLASSES, per_class=3)
    z = fig.data[0].z
    assert z.shape == (3 * 7, 3 * 7, 3)                                 # tiles padded by 1 on each side
    assert list(fig.layout.yaxis.tickvals) == [3.5, 10.5, 17.5]
    assert list(fig.layout.yaxis.ticktext) == list(CLASSES)
    for k in range(3):
        assert (z[1 + 7 * k:6 + 7 * k, 1:6] == 100 * k + 10).all()      # row k shows class k
    assert (z[0] == 0).all() and (z[:, 6:8] == 0).all()                 # black frames
    counts = dsf.class_counts(y, CLASSES, "per class")
    assert list(counts.data[0].y) == [4, 4, 4] and counts.layout.title.text == "per class"


def test_timelapse_figure_draws_gaps_negative_agreement_and_the_current_step():
    fig = prf.timelapse_figure([0, 10, 20], {"Grad-CAM": [float("nan"), -0.4, 1.0],
                                             "p": [0.1, 0.5, 0.9]}, current=10)
    assert [t.name for t in fig.data] == ["Grad-CAM", "p"]
    assert list(fig.data[0].y) == [None, -0.4, 1.0] and list(fig.data[0].x) == [0, 10, 20]
    low, high = fig.layout.yaxis.range
    assert low <= -0.4 and high >= 1.0                    # a negative correlation is not cut off
    assert [s.x0 for s in fig.layout.shapes] == [10]      # the slider's step
