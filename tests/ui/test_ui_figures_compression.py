"""ui.figures.compression: the trade-off charts, the table of points and the maps side by side,
built from hand-made points."""
import numpy as np
import pytest

from karp_models.compress import Point, Size
from karp_models.introspect.similarity import Similarity
from karp_models.ui.figures import compression as figs


def _point(kind, s=0.0, steps=0, acc=0.9, stored=2_000_000, lat=1.0, gc=1.0):
    sims = {"Grad-CAM": [Similarity({"Spearman |map|": gc})], "Integrated Gradients": [Similarity({}, "is flat")]}
    maps = {"Grad-CAM": np.ones((1, 4, 4)), "Integrated Gradients": np.eye(4)[None]}
    return Point(f"{kind}-{s}-{steps}", kind, s, steps, acc, 1.0, Size(2_000_000, stored), lat, 1.0 / lat,
                 s if kind == "unstructured" else 0.0, s if kind == "structured" else 0.0, sims, maps)


POINTS = [_point("original", acc=0.94), _point("unstructured", 0.5, acc=0.93, stored=1_000_000),
          _point("unstructured", 0.5, 50, acc=0.94, stored=1_000_000, gc=0.8),
          _point("structured", 0.5, acc=0.2, stored=1_100_000, gc=0.3),
          _point("int8-static", acc=0.94, stored=500_000, lat=0.5)]


@pytest.mark.parametrize("axis", ["size", "latency"])
def test_tradeoff_has_a_line_per_series_and_the_original_as_a_star(axis):
    fig = figs.tradeoff_figure(POINTS, axis)
    names = [t.name for t in fig.data]
    assert names == ["unstructured, pruned only", "unstructured, fine-tuned 50 steps", "channels, pruned only",
                     "int8 static (conv + Linear)", "original model"]
    star = fig.data[-1]
    assert star.marker.symbol == "star" and list(star.y) == [94.0]
    pruned = fig.data[0]                                        # each line starts at the original
    want = [2.0, 1.0] if axis == "size" else [1.0, 1.0]         # MB as stored (sparse), or ms
    assert list(pruned.x) == want and list(pruned.y) == [94.0, 93.0]
    assert pruned.line.dash == "dot" and fig.data[1].line.dash is None
    # sparsities are written on one line a kind, and only where the points do not crowd
    texts = [t.text for t in fig.data[:3]]
    assert texts == ([None, ("", "50%"), ("", "50%")] if axis == "size" else [None, None, None])


def test_points_frame_has_one_row_a_point_and_the_similarity_means():
    df = figs.points_frame(POINTS)
    assert list(df.index) == ["original model", "unstructured 50%", "unstructured 50% + 50 steps", "channels 50%",
                              "int8 static (conv + Linear)"]
    assert df.loc["channels 50%", "channels at 0 (%)"] == 50
    assert df.loc["int8 static (conv + Linear)", "speed-up"] == 2
    assert df.loc["unstructured 50% + 50 steps", "Grad-CAM like original"] == pytest.approx(0.8)
    assert np.isnan(df.loc["original model", "IG like original"])        # no image could be judged


def test_maps_figure_puts_each_method_in_a_row_original_left():
    p = POINTS[3]
    fig = figs.maps_figure({m: a[0] for m, a in POINTS[0].maps.items()}, {m: a[0] for m, a in p.maps.items()},
                           np.zeros((1, 4, 4)), p.label)
    assert [a.text for a in fig.layout.annotations] == ["Grad-CAM · original model", "Grad-CAM · channels 50%",
                                                        "IG · original model", "IG · channels 50%"]
