"""ui.figures.training and .seq2seq: curves from plain sequences, the prediction grid's tiles."""
import numpy as np
import plotly.graph_objects as go

from karp_models.ui import style
from karp_models.ui.figures import seq2seq as s2s
from karp_models.ui.figures import training as tr


def curve(key: str, label: str, color: str, n: int = 10) -> tr.Curve:
    steps = list(range(0, 10 * n, 10))
    return tr.Curve(key=key, label=label, color=color, steps=steps,
                    train_loss=[2.0 / (1 + i) for i in range(n)], lr=[1e-3] * n,
                    val_steps=steps[::5], val_loss=[1.5, 0.5], val_accuracy=[0.25, 0.875])


def test_loss_chart_overlays_runs_with_their_labels_and_colours():
    a, b = curve("j1", "fast lr 0.004", "#111111"), curve("j2", "classic", "#222222")
    fig = tr.curves_figure([a, b], "loss")
    assert [t.name for t in fig.data] == ["fast lr 0.004 · training", "fast lr 0.004 · validation",
                                          "classic · training", "classic · validation"]
    assert [t.line.color for t in fig.data] == ["#111111"] * 2 + ["#222222"] * 2
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.dash is None
    assert list(fig.data[1].x) == [0, 50] and list(fig.data[1].y) == [1.5, 0.5]
    assert fig.layout.title.text == "Loss" and fig.layout.title.font.size == style.SIZE + 2
    assert fig.layout.yaxis.title.text == "cross-entropy (nats)" and fig.layout.showlegend is not False


def test_accuracy_in_percent_and_one_run_without_label():
    fig = tr.curves_figure([curve("j", "only", "#333333")], "accuracy")
    assert len(fig.data) == 1 and fig.data[0].name == "value"
    assert list(fig.data[0].y) == [25.0, 87.5]
    assert fig.layout.yaxis.title.text == "%" and fig.layout.showlegend is False
    lr = tr.curves_figure([curve("j", "only", "#333333")], "lr")
    assert lr.layout.yaxis.exponentformat == "e" and lr.layout.height == 260
    assert list(lr.data[0].y) == [1e-3] * 10


def test_downsample_keeps_the_ends_and_the_bound():
    x = list(range(20_001))
    dx, dy = tr.downsample(x, [v * 2 for v in x], max_points=500)
    assert len(dx) <= 500 and dx[0] == 0 and dx[-1] == 20_000
    assert dy == [v * 2 for v in dx]
    assert tr.downsample([1, 2], [3, 4]) == ([1, 2], [3, 4])


def test_run_colors_follow_start_order():
    assert tr.run_colors(["a", "b"]) == {"a": style.RUNS[0], "b": style.RUNS[1]}
    assert tr.run_colors([str(i) for i in range(12)])["10"] == style.RUNS[0]


def test_prediction_grid_frames_labels_and_title():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    labels, preds = (0, 1, 2, 0, 1, 2), (0, 2, 2, 0, 0, 2)
    classes = ("cat", "dog", "eel")
    fig = tr.prediction_grid(images, labels, preds, classes, step=1234)
    assert fig.layout.title.text == "Test images at step 1,234: 4 of 6 right"
    texts = [a.text for a in fig.layout.annotations]
    assert texts[0] == "✓ cat" and texts[1] == "✗ eel<br>(is dog)" and len(texts) == 6
    assert fig.layout.annotations[1].font.color == style.WRONG_TEXT
    scale, border = 96 // 8, max(3, 96 // 20)
    th = 8 * scale + 2 * border
    grid = tr.montage(images, [p == y for p, y in zip(preds, labels)], scale, border)
    gap = max(8, int(th * 0.55))
    assert grid.shape == (2 * (th + gap), 4 * (th + 6) - 6, 3)
    green, red = tr._rgb(True), tr._rgb(False)
    assert tuple(grid[0, 0]) == green and tuple(grid[0, th + 6]) == red  # tile 0 right, tile 1 wrong
    assert tuple(grid[0, 3 * (th + 6)]) == green                        # tile 3 right
    assert tuple(grid[th + gap, 0]) == red                              # tile 4 (row 2) wrong
    np.testing.assert_array_equal(grid[border, border + np.arange(scale)], [[images[0, 0, 0, 0]] * 3] * scale)
    # the annotation of tile 5 sits under it, centred
    a = fig.layout.annotations[5]
    assert a.x == 1 * (th + 6) + th / 2 and a.y == (th + gap) + th + gap / 2


def test_seq2seq_curves_take_plain_sequences():
    fig = s2s.curves_figure([1, 2, 3], [3.0, 2.0, 1.0], [(2, 0.5), (3, 0.75)])
    loss, acc = fig.data
    assert list(loss.x) == [1, 2, 3] and list(loss.y) == [3.0, 2.0, 1.0]
    assert list(acc.x) == [2, 3] and list(acc.y) == [50.0, 75.0] and acc.yaxis == "y2"
    assert fig.layout.yaxis.type == "log" and tuple(fig.layout.yaxis2.range) == (0, 101)
    assert isinstance(s2s.curves_figure([], [], []), go.Figure)


def test_alignment_figure_rows_are_output_characters():
    class Tr:  # the shape of seq2seq_train.Translation
        source = "3 <x"
        out_chars = ["2", "0", "</s>"]
        alignment = np.eye(3, 4)

    fig = s2s.alignment_figure(Tr())
    assert np.array_equal(fig.data[0].z, np.eye(3, 4))
    assert list(fig.layout.xaxis.ticktext) == ["3", "␣", "&lt;", "x"]
    assert list(fig.layout.yaxis.ticktext) == ["2", "0", "end"]
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1


def test_augmentation_rows_place_each_image_as_a_sharp_tile():
    from karp_models.ui.figures.training import augmentation_rows

    rng = np.random.default_rng(0)
    stored, seen = rng.random((5, 1, 28, 28)), rng.random((5, 1, 28, 28))
    rows = augmentation_rows(stored, seen)
    s = 3                                                        # 28-pixel images drawn 3x
    assert [r.shape for r in rows] == [(28 * s, (5 * 30 - 2) * s)] * 2
    for row, images in zip(rows, (stored, seen)):
        for i in (0, 4):
            tile = row[::s, i * 30 * s::s][:, :28]               # every s-th pixel: the image itself
            np.testing.assert_array_equal(tile, (images[i, 0] * 255).round().astype(np.uint8))
    assert (rows[0][:, 28 * s:30 * s] == 255).all()              # the white gap between tiles
