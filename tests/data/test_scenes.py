"""Composed scenes and their grammar: every caption reads back to its own scene (both languages),
the scenes agree with what their captions say (counts, classes, which group is left or above),
generation is deterministic, and the held-out compositions stay out of training."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from karp_models.data import grammar, scenes
from karp_models.data.base import CaptionData
from karp_models.data.grammar import Layout, parse


def fake_pool(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items (n, 1, 28, 28): a bright rectangle whose shape depends on the class, and labels 0..9."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 4 + c:24, 6:22 - c] = rng.integers(120, 256)
    return x, y


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    tx, ty = fake_pool(seed=0)
    vx, vy = fake_pool(seed=1)
    return scenes.compose_arrays(tx, ty, vx, vy, n_train=300, n_test=60)


# --- the grammar


@pytest.mark.parametrize("language", grammar.LANGUAGES)
def test_every_wording_of_every_layout_parses_back_to_it(language):
    layouts = grammar.all_layouts()
    assert len(layouts) == 10 * 3 + 90 * len(grammar.PAIR_COUNTS) * 2
    seen = set()
    for lay in layouts:
        caps = grammar.captions(lay, language)
        assert len(caps) == (2 if lay.relation is None else 8)
        assert len({tuple(c) for c in caps}) == len(caps)                 # all different wordings
        for cap in caps:
            assert parse(cap, language) == lay, (lay, cap)
            seen.add(tuple(cap))
    assert len(seen) == sum(len(grammar.captions(x, language)) for x in layouts)  # no caption names two layouts


def test_wordings_read_as_people_write_them():
    lay = Layout(((7, 1), (8, 1)), "left")
    en = [" ".join(c) for c in grammar.captions(lay, "en")]
    assert en[0] == "a sneaker to the left of a bag" and "a bag to the right of a sneaker" in en
    two = [" ".join(c) for c in grammar.captions(Layout(((6, 2), (9, 1)), "above"), "en")]
    assert two[0] == "two shirts above an ankle boot" and "there is an ankle boot below two shirts" in two
    zh = ["".join(c) for c in grammar.captions(Layout(((6, 2), (9, 1)), "above"), "zh")]
    assert zh[0] == "两件衬衫在一只短靴的上面" and "两件衬衫的下面有一只短靴" in zh
    assert ["".join(c) for c in grammar.captions(Layout(((8, 3),)), "zh")] == ["三个包", "有三个包"]


@pytest.mark.parametrize("words,language", [
    ("a sneakers left of a bag", "en"), ("an bag left of a sneaker", "en"), ("a ankle boot above a bag", "en"),
    ("there is two bags", "en"), ("there are a bag above a coat", "en"), ("a bag to the left of", "en"),
    ("a bag", "en"), ("a bag beside a coat", "en"), ("two bags two bags", "en"), ("", "en"),
    ("一 个 运动鞋 在 一 个 包 的 左边", "zh"), ("一 只 运动鞋 在 一 个 包 左边", "zh"),
    ("一 个 包", "zh"), ("有 一 个 包", "zh"), ("一 只 运动鞋 的 左边 一 个 包", "zh")])
def test_the_parser_refuses_what_the_grammar_does_not_write(words, language):
    assert parse(words.split(), language) is None


def test_layout_codes_round_trip_and_count_items():
    for lay in grammar.all_layouts():
        assert Layout.decode(lay.encode()) == lay
    assert Layout(((6, 2), (9, 1)), "above").items() == Counter({6: 2, 9: 1})
    assert grammar.canonical((8, 1), "right", (7, 1)) == Layout(((7, 1), (8, 1)), "left")


def test_noun_classes_name_every_class_once_per_form():
    en, zh = grammar.noun_classes("en"), grammar.noun_classes("zh")
    assert en["boot"] == en["boots"] == 9 and en["t-shirts"] == 0 and len(en) == 20
    assert zh["运动鞋"] == 7 and len(zh) == 10

# --- the scenes


def _check_scene(data: CaptionData, a: dict, split: str, i: int) -> None:
    lay = Layout.decode(a[f"{split}_layouts"][i])
    for ref in data.references(split, i):
        assert parse(ref, data.language) == lay                           # the caption states the scene
    classes, boxes = a[f"{split}_classes"][i], a[f"{split}_boxes"][i]
    k = int((classes >= 0).sum())
    assert Counter(classes[:k].tolist()) == lay.items() and 2 <= k <= 4
    assert (boxes[:k, 0] < boxes[:k, 2]).all() and (boxes[:k, 1] < boxes[:k, 3]).all()
    assert (boxes[:k] >= 0).all() and (boxes[:k] <= scenes.CANVAS).all() and (boxes[k:] == -1).all()
    if lay.relation is not None:                                          # the relation holds, and only it
        na = lay.groups[0][1]
        first, second = boxes[:na], boxes[na:k]
        lo, hi = (0, 2) if lay.relation == "left" else (1, 3)
        other_lo, other_hi = (1, 3) if lay.relation == "left" else (0, 2)
        assert first[:, hi].max() <= second[:, lo].min()
        assert min(first[:, other_hi].max(), second[:, other_hi].max()) > \
            max(first[:, other_lo].min(), second[:, other_lo].min())
    img = a[f"{split}_x"][i, 0]
    inside = np.zeros_like(img, bool)
    for x0, y0, x1, y1 in boxes[:k]:
        inside[y0:y1, x0:x1] = True
    assert (img[~inside] <= 25).all() and img[inside].max() > 100          # boxes hold every item pixel


@pytest.mark.parametrize("language", grammar.LANGUAGES)
def test_every_scene_is_what_its_captions_say(small, language):
    data = scenes.caption_data(small, language, source="fake items")
    assert data.vocab[:4] == CaptionData.SPECIALS and data.language == language
    for split in ("train", "test"):
        for i in range(len(small[f"{split}_x"])):
            _check_scene(data, small, split, i)


def test_generation_is_deterministic_and_splits_differ():
    px, py = fake_pool()
    a, b = scenes.generate("train", 40, px, py), scenes.generate("train", 40, px, py)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    t = scenes.generate("test", 40, px, py)
    assert not np.array_equal(a["train_x"], t["test_x"])


def test_held_out_pairs_only_in_test(small):
    def pairs(split):
        return [frozenset((int(c[0]), int(c[2]))) for c in small[f"{split}_layouts"] if c[4] != 0]

    assert not set(pairs("train")) & scenes.HELD_OUT_SET
    novel = small["test_novel"].astype(bool)
    lays = small["test_layouts"]
    assert novel[1::2].all() and not novel[::2].any()
    for code, nov in zip(lays, novel):
        is_held = code[4] != 0 and frozenset((int(code[0]), int(code[2]))) in scenes.HELD_OUT_SET
        assert is_held == bool(nov)
    assert len(scenes.HELD_OUT_SET) == 5 and set().union(*scenes.HELD_OUT_SET) == set(range(10))


def test_the_real_datasets_when_fashion_mnist_is_here():
    from karp_models import data

    if not data.status("scenes").available:
        pytest.skip("fashion-mnist is not on this machine")
    en, zh = data.load("scenes"), data.load("scenes-zh")
    assert (len(en.train_x), len(en.test_x)) == (scenes.N_TRAIN, scenes.N_TEST)
    assert en.train_x.shape[1:] == (1, 64, 64) and zh.train_x is not None
    assert en.vocab_size == data.status("scenes").vocab_size == 42 and zh.vocab_size == 33
    assert int(en.novel.sum()) == scenes.N_TEST // 2
    a = {f"{s}_{k}": getattr(en, k)[s].numpy() for s in ("train", "test") for k in ("boxes", "classes", "layouts")}
    a.update(train_x=en.train_x.numpy(), test_x=en.test_x.numpy())
    for i in range(0, scenes.N_TEST, 37):
        _check_scene(en, a, "test", i)
        _check_scene(zh, a, "test", i)
    assert zh.text(zh.references("test", 0)[0]) == "两只凉鞋在两条裤子的上面"            # the same scenes on every machine
    assert en.text(en.references("test", 0)[0]) == "two sandals above two trousers"


# --- a person's own scene


def test_layout_of_reads_every_generated_scene_back(small):
    """The composer's reading of boxes agrees with the generator's layout on every scene."""
    for split in ("train", "test"):
        for i in range(len(small[f"{split}_x"])):
            lay, why = scenes.layout_of(small[f"{split}_boxes"][i], small[f"{split}_classes"][i])
            assert lay == Layout.decode(small[f"{split}_layouts"][i]) and why == ""


def test_placed_items_are_drawn_as_the_generator_draws_them():
    px, py = fake_pool()
    items = [scenes.Placed(7, 4, 20, 20), scenes.Placed(8, 36, 18, 24, pick=3)]
    canvas, boxes, classes = scenes.compose_placed(items, px, py)
    assert canvas.shape == (1, 64, 64) and canvas.dtype == np.uint8
    assert classes.tolist() == [7, 8, -1, -1] and (boxes[2:] == -1).all()
    for (x0, y0, x1, y1), it in zip(boxes[:2], items):                   # tight, inside the square
        assert it.x <= x0 < x1 <= it.x + it.side and it.y <= y0 < y1 <= it.y + it.side
    outside = np.ones((64, 64), bool)
    for x0, y0, x1, y1 in boxes[:2]:
        outside[y0:y1, x0:x1] = False
    assert (canvas[0][outside] <= 25).all() and canvas[0][~outside].max() > 100
    lay, _ = scenes.layout_of(boxes, classes)
    assert lay == Layout(((7, 1), (8, 1)), "left")
    assert parse("a sneaker to the left of a bag".split()) == lay           # what the grammar says of it
    again, _, _ = scenes.compose_placed(items, px, py)
    assert np.array_equal(canvas, again)                                   # the same picture every time


def test_an_item_past_the_edge_is_cut_and_bad_items_refused():
    px, py = fake_pool()
    canvas, boxes, _ = scenes.compose_placed([scenes.Placed(0, 50, 50, 26), scenes.Placed(0, 0, 0, 16)], px, py)
    assert canvas.shape == (1, 64, 64) and (boxes[:2, 2:] <= 64).all()
    for bad in ([], [scenes.Placed(0, 0, 0, 16)] * 5, [scenes.Placed(11, 0, 0, 16)],
                [scenes.Placed(0, 64, 0, 16)], [scenes.Placed(0, 0, 0, 2)]):
        with pytest.raises(ValueError):
            scenes.compose_placed(bad, px, py)


@pytest.mark.parametrize("boxes, classes, expect", [
    ([[0, 0, 10, 10], [20, 2, 30, 12]], [3, 5], Layout(((3, 1), (5, 1)), "left")),
    ([[20, 2, 30, 12], [0, 0, 10, 10]], [3, 5], Layout(((5, 1), (3, 1)), "left")),       # turned round
    ([[0, 30, 10, 40], [2, 0, 12, 10], [20, 28, 30, 38]], [3, 5, 3], Layout(((5, 1), (3, 2)), "above")),
    ([[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30]], [8, 8, 8], Layout(((8, 3),))),
    ([[0, 0, 10, 10], [20, 20, 30, 30]], [3, 5], None),                                 # diagonal
    ([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [3, 5, 3], None),              # mixed
    ([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [3, 5, 6], None),              # three kinds
    ([[0, 0, 10, 10], [-1, -1, -1, -1]], [3, -1], None),                                # one item
])
def test_layout_of_says_what_the_grammar_can_state(boxes, classes, expect):
    lay, why = scenes.layout_of(np.array(boxes), np.array(classes))
    assert lay == expect and (why == "") == (expect is not None)
