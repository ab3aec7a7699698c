"""ui.own's record of a person's classes (files checked as Predict checks them, counts from the
seeded split, what keeps them from being a dataset) and ui.figures.finetune (the three modes on one
chart, the frozen-layer diagram)."""
import io

import numpy as np
import pytest
from PIL import Image

from karp_models import preprocess as pp
from karp_models.data import own as data_own
from karp_models.models.finetune import Block
from karp_models.ui import own
from karp_models.ui.figures import finetune as figs
from karp_models.ui.predict import cannot_use


def png(side: int = 60, seed: int = 0) -> bytes:
    a = np.full((side, side, 3), 230, np.uint8)
    o = seed % 10
    a[10 + o:40 + o, 10:40] = 30
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_files_are_checked_as_predict_checks_them():
    d = own.new_draft(["cat", "dog"])
    cat = d.classes[0]
    v0 = d.version
    junk = b"this is not a picture"
    assert own.add_files(d, cat, [("a.png", png()), ("notes.txt", junk), ("b.png", png(seed=1))]) == 2
    with pytest.raises(pp.ImageError) as e:                 # what Predict says of the same file
        pp.decode(junk, "notes.txt")
    assert cat.refused == [("notes.txt", cannot_use(e.value))]
    assert cannot_use(e.value).startswith("**This image cannot be used.**")
    assert [p.name for p in cat.pictures] == ["a.png", "b.png"] and d.version > v0
    assert max(cat.pictures[0].thumb.shape[:2]) == own.THUMB and cat.pictures[0].thumb.dtype == np.uint8
    assert own.add_files(d, cat, []) == 0 and cat.refused == []          # the next addition's list


def test_the_memory_bound_refuses_with_a_reason(monkeypatch):
    monkeypatch.setattr(own, "MAX_BYTES", len(png()) + 10)
    d = own.new_draft(["a", "b"])
    assert own.add_files(d, d.classes[0], [("1.png", png()), ("2.png", png(seed=2))]) == 1
    assert d.classes[0].refused[0][0] == "2.png" and "MB of images already" in d.classes[0].refused[0][1]


def test_counts_follow_the_seeded_split():
    d = own.new_draft(["a", "b", "c"])
    for i, c in enumerate(d.classes):
        own.add_files(d, c, [(f"{j}.png", png(seed=j)) for j in range(5 * (i + 1))])
    d.val_fraction, d.seed = 0.2, 4
    rows = own.counts(d).to_dict("records")
    labels = np.repeat(np.arange(3), [5, 10, 15])
    _tr, va = data_own.split(labels, 0.2, 4)
    assert [r["for validation"] for r in rows] == [int(np.sum(labels[va] == k)) for k in range(3)] == [1, 2, 3]
    assert [r["images"] for r in rows] == [5, 10, 15]
    assert [r["for training"] + r["for validation"] for r in rows] == [5, 10, 15]


def test_what_keeps_the_classes_from_being_a_dataset():
    d = own.new_draft()
    assert [c.name for c in d.classes] == ["Class 1", "Class 2"]
    assert len(own.problems(d)) == 2                            # no images in either
    for c in d.classes:
        own.add_files(d, c, [("1.png", png()), ("2.png", png(seed=3))])
    assert own.problems(d) == []
    d.classes[1].name = "class 1"
    assert any("two classes are called" in p for p in own.problems(d))
    own.add_class(d)
    assert d.classes[-1].name == "Class 3"
    while len(d.classes) < data_own.MAX_CLASSES:
        own.add_class(d)
    with pytest.raises(data_own.OwnDataError, match="10 classes is the most"):
        own.add_class(d)


def test_a_folder_replaces_the_classes():
    d = own.new_draft()
    own.replace_with_folder(d, {"x": [("1.png", png()), ("2.png", png(1))], "y": [("1.png", b"junk")]})
    assert [c.name for c in d.classes] == ["x", "y"] and len(d.classes[0].pictures) == 2
    assert d.classes[1].refused and not d.classes[1].pictures
    with pytest.raises(data_own.OwnDataError, match="11 class folders"):
        own.replace_with_folder(d, {str(i): [] for i in range(11)})
    assert [c.name for c in d.classes] == ["x", "y"]          # a refused folder changes nothing


# ---------------------------------------------------------------------------- figures


def test_the_three_modes_on_one_chart_with_chance():
    curves = [figs.ModeCurve("head", "Head only", [10, 20], [0.5, 0.75]),
              figs.ModeCurve("whole", "Whole network", [10, 20], [0.25, 0.5]),
              figs.ModeCurve("scratch", "From scratch", [10], [1 / 3])]
    fig = figs.modes_figure(curves, chance=1 / 3)
    assert [t.name for t in fig.data] == ["Head only", "Whole network", "From scratch"]
    assert [t.line.color for t in fig.data] == [figs.MODE_COLORS[m] for m in ("head", "whole", "scratch")]
    assert list(fig.data[0].y) == [50.0, 75.0] and list(fig.data[1].x) == [10, 20]
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == pytest.approx(100 / 3)
    assert fig.layout.showlegend is not False and fig.layout.yaxis.range == (0, 102)


def test_the_diagram_marks_frozen_slower_and_new_blocks():
    blocks = [Block("features.conv1", (("Conv2d", 1),), 800, 0, 0.0, False),
              Block("features.layer1", (("Conv2d", 2), ("BatchNorm2d", 2)), 50_000, 50_000, 0.1, False),
              Block("features.layer2", (("Conv2d", 2),), 90_000, 90_000, 1.0, False),
              Block("classifier.head", (("Linear", 1),), 33, 33, 1.0, True)]
    fig = figs.blocks_figure(blocks)
    bar = fig.data[0]
    assert list(bar.y) == [b.name for b in blocks] and list(bar.x) == [800, 50_000, 90_000, 33]
    assert list(bar.marker.color) == [figs.FROZEN, figs.SLOWER, figs.TRAINED, figs.NEW]
    assert bar.text[0] == "frozen · 800" and bar.text[1].startswith("trained at 0.1×")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.autorange == "reversed"
