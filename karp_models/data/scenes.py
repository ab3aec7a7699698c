"""Composed scenes for image captioning: 2 to 4 Fashion-MNIST items on a 64x64 canvas, at varied
places and sizes, each with every caption the grammar (data/grammar.py) writes for it, in English
('scenes') or Chinese ('scenes-zh'), and each item's class and box.

Generated with fixed seeds from Fashion-MNIST (training scenes from its training images, test
scenes from its test images), so every machine makes the same scenes; cached like the other
datasets. Held-out compositions: five pairs of classes never appear together in a training
scene; half of the test scenes are made of exactly those pairs, so the test measures whether a
model composes what it knows (the "compositional split" idea of Johnson et al. 2017, CLEVR's CoGenT).
A two-group scene's relation is the only one that holds: groups side by side overlap in height,
groups one above the other overlap in width.
"""
from __future__ import annotations

import functools
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from karp_models.data import grammar, images
from karp_models.data.base import CaptionData, DatasetMissing, DatasetStatus, channel_stats, pad_refs
from karp_models.data.cache import cached_arrays, source_key
from karp_models.data.grammar import Layout
from karp_models.i18n import N_, _

CANVAS = 64
SIZES = (16, 26)             # an item's side in pixels, both ends included
MAX_ITEMS = 4
N_TRAIN, N_TEST = 20_000, 2_000
P_SINGLE = 0.15              # share of scenes with one group ("three bags")
HELD_OUT = ((0, 9), (1, 7), (2, 5), (3, 8), (4, 6))  # T-shirt+ankle boot, trouser+sneaker, pullover+sandal,
HELD_OUT_SET = frozenset(frozenset(p) for p in HELD_OUT)  # dress+bag, coat+shirt: only in test
SEED = 20
VERSION = 2                  # bump when the generator changes (the cache key follows)
NAMES = {"en": "scenes", "zh": "scenes-zh"}

# ---------------------------------------------------------------------------- placement


def _overlaps(box: tuple[int, int, int], boxes: list[tuple[int, int, int]], gap: int = 1) -> bool:
    x, y, s = box
    return any(x < bx + bs + gap and bx < x + s + gap and y < by + bs + gap and by < y + s + gap
               for bx, by, bs in boxes)


def _place_in(rng: random.Random, regions: list[tuple[int, int]], placed: list) -> bool:
    """Squares (x, y, side) for items whose x must lie in their (lo, hi) region; False if stuck."""
    for lo, hi in regions:
        for _attempt in range(30):
            s = rng.randint(SIZES[0], min(SIZES[1], hi - lo))
            box = (rng.randint(lo, hi - s), rng.randint(0, CANVAS - s), s)
            if not _overlaps(box, placed):
                placed.append(box)
                break
        else:
            return False
    return True


def place(rng: random.Random, layout: Layout) -> list[tuple[int, int, int]]:
    """Squares (x, y, side) for the layout's items, first group first; two groups are placed
    side by side (then turned, for 'above'), the first on the left."""
    if layout.relation is None:
        while True:
            placed: list = []
            if _place_in(rng, [(0, CANVAS)] * layout.groups[0][1], placed):
                return placed
    (_, na), (_, nb) = layout.groups
    while True:
        split = rng.randint(24, CANVAS - 24)
        placed = []
        if _place_in(rng, [(0, split)] * na + [(split, CANVAS)] * nb, placed):
            break
    if layout.relation == "above":                     # made as left/right, then turned: x <-> y
        placed = [(y, x, s) for x, y, s in placed]
    return placed

# ---------------------------------------------------------------------------- scenes


def random_layout(rng: random.Random, novel: bool = False) -> Layout:
    """A layout from the training distribution, or (novel) one made of a held-out pair."""
    if not novel and rng.random() < P_SINGLE:
        return Layout(((rng.randrange(10), rng.randint(2, MAX_ITEMS)),))
    while True:
        a, b = rng.sample(range(10), 2)
        if (frozenset((a, b)) in HELD_OUT_SET) == novel:
            break
    na, nb = rng.choice(grammar.PAIR_COUNTS)
    return Layout(((a, na), (b, nb)), "left" if rng.random() < 0.5 else "above")


def compose(rng: random.Random, layout: Layout, pool_x: np.ndarray, by_class: list[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: the canvas (1, 64, 64) uint8, item boxes (K, 4) tight around the item's pixels
    (x0, y0, x1, y1, end exclusive) and item classes (K,), both padded to MAX_ITEMS with -1."""
    cls = [c for c, n in layout.groups for _ in range(n)]
    while True:
        squares, items, tight = place(rng, layout), [], []
        for (x, y, s), c in zip(squares, cls):
            item, box = _resized(pool_x[rng.choice(by_class[c]), 0], x, y, s)
            tight.append(box)
            items.append(item)
        if layout.relation is None or _across(np.array(tight), layout.groups[0][1], layout.relation) >= 4:
            break
    return _paint(squares, items, tight, cls)


def _resized(item: np.ndarray, x: int, y: int, s: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 28x28 item resized to s x s (area averaging) and its tight box on the canvas when its
    top-left corner is at (x, y): (x0, y0, x1, y1), end exclusive (the square if it is blank)."""
    import cv2

    item = cv2.resize(item, (s, s), interpolation=cv2.INTER_AREA)                        # (s, s)
    ys, xs = np.nonzero(item > 25)
    box = (x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1) if len(xs) else (x, y, x + s, y + s)
    return item, tuple(int(v) for v in box)


def _paint(squares: list, items: list[np.ndarray], tight: list, cls: list[int]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items on a black canvas (brightest wins where they overlap; a square past the edge is cut),
    with boxes and classes padded to MAX_ITEMS with -1."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    for (x, y, s), item in zip(squares, items):
        y1, x1 = min(CANVAS, y + s), min(CANVAS, x + s)
        np.maximum(canvas[y:y1, x:x1], item[:y1 - y, :x1 - x], out=canvas[y:y1, x:x1])
    boxes = np.full((MAX_ITEMS, 4), -1, np.int64)
    classes = np.full(MAX_ITEMS, -1, np.int64)
    boxes[:len(tight)] = np.minimum(np.array(tight, np.int64).reshape(-1, 4), CANVAS)
    classes[:len(cls)] = cls
    return canvas[None], boxes, classes


def _across(boxes: np.ndarray, na: int, relation: str) -> int:
    """How far the two groups' extents overlap across the relation (in height for 'left', in
    width for 'above'), in pixels: > 0 means the scene is not also the other relation."""
    lo, hi = (1, 3) if relation == "left" else (0, 2)
    a, b = boxes[:na], boxes[na:]
    return int(min(a[:, hi].max(), b[:, hi].max()) - max(a[:, lo].min(), b[:, lo].min()))


# ---------------------------------------------------------------------------- a person's own scene


@dataclass(frozen=True)
class Placed:
    """One item a person places: its class (0-9), the top-left corner (x, y) of its square and the
    square's side, in canvas pixels (the scenes use sides 16 to 26), and which picture of the
    class (an index into that class's pictures, wrapping round)."""

    cls: int
    x: int
    y: int
    side: int
    pick: int = 0


def compose_placed(items: Sequence[Placed], pool_x: np.ndarray, pool_y: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scene from items placed by hand, drawn as the generator draws them: canvas (1, 64, 64)
    uint8, tight boxes (K, 4) and classes (K,) padded to MAX_ITEMS with -1.

    Args:
        items: 1 to MAX_ITEMS Placed items; each square must start on the canvas (0 <= x, y < 64)
            and have a side of 4 to 64 pixels (a part past the right or bottom edge is cut off).
        pool_x, pool_y: the item pictures (N, 1, 28, 28) uint8 and their classes (N,).
    Raises:
        ValueError: no items, too many, an unknown class, or a square off the canvas.
    """
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValueError(f"a scene has 1 to {MAX_ITEMS} items, not {len(items)}")
    squares, pictures, tight = [], [], []
    for it in items:
        of_class = np.flatnonzero(pool_y == it.cls)
        if not len(of_class):
            raise ValueError(f"no picture of class {it.cls} in the pool")
        if not (0 <= it.x < CANVAS and 0 <= it.y < CANVAS and 4 <= it.side <= CANVAS):
            raise ValueError(f"item square (x={it.x}, y={it.y}, side={it.side}) is not on the "
                             f"{CANVAS}x{CANVAS} canvas")
        item, box = _resized(pool_x[of_class[it.pick % len(of_class)], 0], it.x, it.y, it.side)
        squares.append((it.x, it.y, it.side))
        pictures.append(item)
        tight.append(box)
    return _paint(squares, pictures, tight, [it.cls for it in items])


def layout_of(boxes: np.ndarray, classes: np.ndarray) -> tuple[Layout | None, str]:
    """What the grammar can say of a scene exactly, from its item boxes (K, 4) (x0, y0, x1, y1,
    end exclusive) and classes (K,) (rows of -1 ignored): (layout, '') or (None, why not).

    Two or more items of one class are one group ("three bags"); two classes are two groups in
    the one relation that holds: side by side when one group lies wholly left of the other and
    they overlap in height ("left"), one above the other when wholly above and overlapping in
    width ("above"). A diagonal or interleaved pair, a single item, or three classes have no
    caption in the grammar (the reason is English, marked for the catalog: show it with _()).
    The generator's scenes all satisfy this (tests check it)."""
    keep = np.asarray(classes) >= 0
    boxes, classes = np.asarray(boxes)[keep], np.asarray(classes)[keep]
    kinds = list(dict.fromkeys(int(c) for c in classes))                   # first seen first
    if not 2 <= len(classes) <= MAX_ITEMS:
        return None, N_("the grammar describes scenes of 2 to 4 items")
    if len(kinds) == 1:
        return Layout(((kinds[0], len(classes)),)), ""
    if len(kinds) > 2:
        return None, N_("the grammar names at most two kinds of item in a scene")
    a, b = (boxes[classes == k] for k in kinds)
    na, nb = len(a), len(b)

    def before(p: np.ndarray, q: np.ndarray, lo: int, hi: int) -> bool:
        return bool(p[:, hi].max() <= q[:, lo].min())

    def overlap(lo: int, hi: int) -> bool:
        return min(a[:, hi].max(), b[:, hi].max()) > max(a[:, lo].min(), b[:, lo].min())

    side = before(a, b, 0, 2) or before(b, a, 0, 2)
    stacked = before(a, b, 1, 3) or before(b, a, 1, 3)
    if side and overlap(1, 3):
        first = (kinds[0], na) if before(a, b, 0, 2) else (kinds[1], nb)
        second = (kinds[1], nb) if first[0] == kinds[0] else (kinds[0], na)
        return Layout((first, second), "left"), ""
    if stacked and overlap(0, 2):
        first = (kinds[0], na) if before(a, b, 1, 3) else (kinds[1], nb)
        second = (kinds[1], nb) if first[0] == kinds[0] else (kinds[0], na)
        return Layout((first, second), "above"), ""
    if side or stacked:
        return None, N_("the two kinds of item are placed diagonally: neither side by side nor one above the other")
    return None, N_("the two kinds of item are mixed together: neither group is wholly on one side of the other")


def generate(split: str, n: int, pool_x: np.ndarray, pool_y: np.ndarray) -> dict[str, np.ndarray]:
    """n scenes of `split` from the item pool (Fashion-MNIST's images of the same split). Test
    scenes alternate: even ones from the training distribution, odd ones from held-out pairs."""
    rng = random.Random(f"scenes/{SEED}/{VERSION}/{split}")
    by_class = [np.flatnonzero(pool_y == c) for c in range(10)]
    out = {k: [] for k in ("x", "boxes", "classes", "layouts", "novel")}
    for i in range(n):
        novel = split == "test" and i % 2 == 1
        layout = random_layout(rng, novel)
        x, boxes, classes = compose(rng, layout, pool_x, by_class)
        for k, v in zip(out, (x, boxes, classes, np.array(layout.encode()), novel)):
            out[k].append(v)
    return {f"{split}_{k}": np.stack(v) if k != "novel" else np.array(v, np.int64) for k, v in out.items()}

# ---------------------------------------------------------------------------- the datasets


def status(language: str, root: str | os.PathLike | None = None) -> DatasetStatus:
    name = NAMES[language]
    fashion = images.fashion_status(root)
    if not fashion.available:
        return DatasetStatus(name, "scenes", False, _("not found"), how_to_get=fashion.how_to_get,
                             note=_("composed from fashion-mnist, which is missing: {note}").format(
                                 note=fashion.note))
    return DatasetStatus(name, "scenes", True,
                         _("composed from fashion-mnist ({source}), seed {seed}").format(
                             source=fashion.source, seed=SEED),
                         note=_("{n} class pairs only in test").format(n=len(HELD_OUT)),
                         sizes={"train": N_TRAIN, "test": N_TEST},
                         vocab_size=len(CaptionData.SPECIALS) + len(grammar.vocabulary(language)))


def load(language: str, root: str | os.PathLike | None = None) -> CaptionData:
    found, why = images.locate_fashion(root)
    if found is None:
        raise DatasetMissing(_("{name} is composed from fashion-mnist, which is not on this machine ({why}). "
                               "Get it with one of:\n  {apt}\n  {download}    (needs internet)").format(
                                   name=NAMES[language], why=why, apt=images.APT_FASHION,
                                   download=images.download_command("fashion-mnist")))
    return _load(found, language, root)


@functools.lru_cache(maxsize=4)
def _load(found: images.Found, language: str, root: str | os.PathLike | None) -> CaptionData:
    def build() -> dict[str, np.ndarray]:
        fm = images.load_fashion(root)
        return compose_arrays(fm.train_x.numpy(), fm.train_y.numpy(), fm.test_x.numpy(), fm.test_y.numpy())

    a = cached_arrays("scenes", source_key("scenes", VERSION, N_TRAIN, N_TEST, CANVAS, found.key), build)
    return caption_data(a, language, source=f"composed from fashion-mnist: {found.source}")


def compose_arrays(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, np.ndarray]:
    """Training and test scenes from item pools (N, 1, 28, 28) uint8 with labels 0..9, and the
    training images' mean and std: the arrays caption_data() reads."""
    a = {**generate("train", n_train, train_x, train_y), **generate("test", n_test, test_x, test_y)}
    mean, std = channel_stats(a["train_x"])
    return {**a, "mean": np.array(mean), "std": np.array(std)}


def caption_data(a: dict[str, np.ndarray], language: str, source: str) -> CaptionData:
    """A CaptionData in `language` from generated arrays (every wording of each layout)."""
    import torch

    words = CaptionData.SPECIALS + grammar.vocabulary(language)
    stoi = {w: i for i, w in enumerate(words)}
    nouns = grammar.noun_classes(language)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()}
    refs = {}
    for split in ("train", "test"):
        ids = [[[stoi[w] for w in cap] for cap in grammar.captions(Layout.decode(code), language)]
               for code in a[f"{split}_layouts"]]
        refs[split] = tuple(torch.from_numpy(r) for r in pad_refs(ids))
    return CaptionData(
        name=NAMES[language], language=language, vocab=words,
        train_x=t["train_x"], train_refs=refs["train"][0], train_nrefs=refs["train"][1],
        test_x=t["test_x"], test_refs=refs["test"][0], test_nrefs=refs["test"][1],
        source=source, note=f"held-out pairs in half the test scenes: "
                            f"{', '.join(grammar.CLASSES[a] + ' + ' + grammar.CLASSES[b] for a, b in HELD_OUT)}",
        mean=tuple(float(m) for m in a["mean"]), std=tuple(float(s) for s in a["std"]),
        item_classes=grammar.CLASSES, noun_class=tuple(nouns.get(w, -1) for w in words),
        boxes={s: t[f"{s}_boxes"] for s in ("train", "test")},
        classes={s: t[f"{s}_classes"] for s in ("train", "test")},
        layouts={s: t[f"{s}_layouts"] for s in ("train", "test")}, novel=t["test_novel"])
