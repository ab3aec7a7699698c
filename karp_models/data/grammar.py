"""The caption grammar of the composed scenes, in English and Chinese: what a scene's layout is,
every way the grammar words it, and a parser that reads a caption back into its layout.

A layout is one group of 2-4 items of a class ("three bags") or two groups of different classes
in a relation ("a sneaker to the left of a bag", "two shirts above an ankle boot"; 1-3 items a
group, 2-4 in all). Each two-group layout has 8 wordings: either group first (left/right,
above/below), two phrasings of the relation and two sentence frames ("there is ...");
one group has 2. They are the references BLEU and CIDEr score against, as COCO's five captions
are (Chen et al. 2015, "Microsoft COCO Captions").

Chinese is tokenised by word, not by character: the grammar knows its own words, so no segmenter
is needed; a noun such as 运动鞋 (sneaker) is then one decoding step, as "sneaker" is, so its
attention map is one map in both languages; and the captions stay about as long as the English.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

# ---------------------------------------------------------------------------- words

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")        # Fashion-MNIST's labels
NOUNS_EN = (("t-shirt", "t-shirts"), ("trouser", "trousers"), ("pullover", "pullovers"),
            ("dress", "dresses"), ("coat", "coats"), ("sandal", "sandals"), ("shirt", "shirts"),
            ("sneaker", "sneakers"), ("bag", "bags"), ("ankle boot", "ankle boots"))
NUMBERS_EN = {2: "two", 3: "three", 4: "four"}
RELATIONS_EN = {"left": ("to the left of", "left of"), "right": ("to the right of", "right of"),
                "above": ("above", "over"), "below": ("below", "under")}

NOUNS_ZH = ("T恤", "裤子", "套头衫", "连衣裙", "外套", "凉鞋", "衬衫", "运动鞋", "包", "短靴")
MEASURES_ZH = ("件", "条", "件", "条", "件", "只", "件", "只", "个", "只")   # the classifier each noun takes
NUMBERS_ZH = {1: "一", 2: "两", 3: "三", 4: "四"}
RELATIONS_ZH = {"left": ("左边", "左侧"), "right": ("右边", "右侧"),
                "above": ("上面", "上方"), "below": ("下面", "下方")}

PAIR_COUNTS = ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 1))   # items per group, two groups
INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
LANGUAGES = ("en", "zh")

# ---------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """What a caption states: groups ((class, count), ...) and, for two groups, the relation of
    the first to the second, 'left' or 'above' (a scene is always stored that way round)."""

    groups: tuple[tuple[int, int], ...]
    relation: str | None = None

    def items(self) -> Counter:
        """Class -> how many items of it."""
        out: Counter = Counter()
        for c, n in self.groups:
            out[c] += n
        return out

    def encode(self) -> tuple[int, int, int, int, int]:
        """(a, na, b, nb, rel): rel 0 one group (b = -1, nb = 0), 1 left, 2 above."""
        (a, na), (b, nb) = (*self.groups, (-1, 0))[:2]
        return a, na, b, nb, {None: 0, "left": 1, "above": 2}[self.relation]

    @staticmethod
    def decode(code: Sequence[int]) -> Layout:
        a, na, b, nb, rel = (int(v) for v in code)
        if rel == 0:
            return Layout(((a, na),))
        return Layout(((a, na), (b, nb)), "left" if rel == 1 else "above")


def canonical(first: tuple[int, int], relation: str, second: tuple[int, int]) -> Layout:
    """The layout of 'first <relation> second', turned round to 'left' or 'above'."""
    if relation in ("right", "below"):
        return Layout((second, first), INVERSE[relation])
    return Layout((first, second), relation)

# ---------------------------------------------------------------------------- writing


def _np_en(c: int, n: int) -> list[str]:
    noun = NOUNS_EN[c][n > 1].split()
    det = ("an" if noun[0][0] in "aeiou" else "a") if n == 1 else NUMBERS_EN[n]
    return [det, *noun]


def _np_zh(c: int, n: int) -> list[str]:
    return [NUMBERS_ZH[n], MEASURES_ZH[c], NOUNS_ZH[c]]


def captions(layout: Layout, language: str = "en") -> list[list[str]]:
    """Every wording of `layout` as word lists; the first is the canonical one."""
    if language not in LANGUAGES:
        raise ValueError(f"language is one of {LANGUAGES}, not {language!r}")
    if len(layout.groups) == 1:
        (c, n), = layout.groups
        if language == "en":
            return [_np_en(c, n), ["there", "are", *_np_en(c, n)]]
        return [_np_zh(c, n), ["有", *_np_zh(c, n)]]
    (A, B), rel = layout.groups, layout.relation
    out = []
    for first, r, second in ((A, rel, B), (B, INVERSE[rel], A)):
        for k in range(2):
            if language == "en":
                x, y, phrase = _np_en(*first), _np_en(*second), RELATIONS_EN[r][k].split()
                verb = "is" if first[1] == 1 else "are"
                out += [[*x, *phrase, *y], ["there", verb, *x, *phrase, *y]]
            else:
                x, y, side = _np_zh(*first), _np_zh(*second), RELATIONS_ZH[r][k]
                out += [[*x, "在", *y, "的", side], [*y, "的", side, "有", *x]]
    return out


def all_layouts() -> list[Layout]:
    """Every layout the scenes use: 2-4 of one class, or two classes in PAIR_COUNTS, left or above."""
    K = len(CLASSES)
    single = [Layout(((c, n),)) for c in range(K) for n in (2, 3, 4)]
    pairs = [Layout(((a, na), (b, nb)), rel) for a in range(K) for b in range(K) if a != b
             for na, nb in PAIR_COUNTS for rel in ("left", "above")]
    return single + pairs


def vocabulary(language: str) -> tuple[str, ...]:
    """Every word the grammar writes in `language`, sorted."""
    return tuple(sorted({w for lay in all_layouts() for cap in captions(lay, language) for w in cap}))


def noun_classes(language: str) -> dict[str, int]:
    """The word that names each class (the head noun: 'boot', 'boots', 短靴) -> its class."""
    if language == "zh":
        return {w: c for c, w in enumerate(NOUNS_ZH)}
    return {form.split()[-1]: c for c, forms in enumerate(NOUNS_EN) for form in forms}

# ---------------------------------------------------------------------------- parsing
# A parser written from the grammar, not from the writer's code, so a test can check that every
# caption the writer makes reads back to its own scene.


def _parse_np_en(w: list[str], i: int) -> tuple[tuple[int, int], int] | None:
    if i >= len(w):
        return None
    det = w[i]
    n = 1 if det in ("a", "an") else {v: k for k, v in NUMBERS_EN.items()}.get(det)
    if n is None:
        return None
    for c, forms in enumerate(NOUNS_EN):
        noun = forms[n > 1].split()
        if w[i + 1:i + 1 + len(noun)] == noun:
            if n == 1 and (det == "an") != (noun[0][0] in "aeiou"):
                return None
            return (c, n), i + 1 + len(noun)
    return None


def _parse_en(w: list[str]) -> Layout | None:
    verb = None
    if w[:1] == ["there"]:
        if len(w) < 2 or w[1] not in ("is", "are"):
            return None
        verb, w = w[1], w[2:]
    got = _parse_np_en(w, 0)
    if got is None:
        return None
    first, i = got
    if verb is not None and (verb == "is") != (first[1] == 1):
        return None
    if i == len(w):
        return Layout((first,)) if first[1] > 1 else None
    for rel, phrases in RELATIONS_EN.items():
        for p in phrases:
            p = p.split()
            if w[i:i + len(p)] == p:
                got = _parse_np_en(w, i + len(p))
                if got is not None and got[1] == len(w):
                    return canonical(first, rel, got[0])
    return None


def _parse_np_zh(w: list[str], i: int) -> tuple[tuple[int, int], int] | None:
    if len(w) < i + 3:
        return None
    n = {v: k for k, v in NUMBERS_ZH.items()}.get(w[i])
    if n is None or w[i + 2] not in NOUNS_ZH:
        return None
    c = NOUNS_ZH.index(w[i + 2])
    return ((c, n), i + 3) if w[i + 1] == MEASURES_ZH[c] else None


def _side_zh(word: str) -> str | None:
    return next((r for r, sides in RELATIONS_ZH.items() if word in sides), None)


def _parse_zh(w: list[str]) -> Layout | None:
    if w[:1] == ["有"]:
        got = _parse_np_zh(w, 1)
        return Layout((got[0],)) if got and got[1] == len(w) and got[0][1] > 1 else None
    got = _parse_np_zh(w, 0)
    if got is None:
        return None
    first, i = got
    if i == len(w):
        return Layout((first,)) if first[1] > 1 else None
    if w[i] == "在":                                   # X 在 Y 的 <side>: X is on Y's <side>
        got = _parse_np_zh(w, i + 1)
        if got is None or got[1] + 2 != len(w) or w[got[1]] != "的":
            return None
        rel = _side_zh(w[-1])
        return canonical(first, rel, got[0]) if rel else None
    if w[i] == "的" and i + 2 < len(w) and w[i + 2] == "有":   # Y 的 <side> 有 X: on Y's <side> is X
        rel = _side_zh(w[i + 1])
        got = _parse_np_zh(w, i + 3)
        if rel is None or got is None or got[1] != len(w):
            return None
        return canonical(got[0], rel, first)
    return None


def parse(words: Sequence[str], language: str = "en") -> Layout | None:
    """The layout a caption states, or None if the grammar cannot read it."""
    w = list(words)
    return _parse_zh(w) if language == "zh" else _parse_en(w)
