"""Caption scores: CIDEr-D against numbers pycocoevalcap 1.2 computed, BLEU-4 through sacrebleu on
our word tokens with ragged references, and attention mass on boxes by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from karp_models.introspect.captions import attention_on_boxes, bleu4, box_coverage, cider_d

REFS = [["a sneaker to the left of a bag", "a bag to the right of a sneaker"],
        ["two shirts above an ankle boot", "an ankle boot below two shirts",
         "there are two shirts above an ankle boot"],
        ["three bags", "there are three bags"],
        ["a coat left of a dress", "a dress right of a coat"]]
HYPS = ["a sneaker to the left of a bag", "two shirts above a sandal", "two bags", "a coat over a dress"]


def split(xs):
    return [x.split() for x in xs]


def test_cider_d_matches_pycocoevalcap():
    # pycocoevalcap 1.2: Cider().compute_score({i: REFS[i]}, {i: [HYPS[i]]})
    expected = [6.9318181818181825, 2.489558593067426, 1.153807419108782, 3.294686735048129]
    mean, each = cider_d(split(HYPS), [split(r) for r in REFS])
    np.testing.assert_allclose(each, expected, rtol=1e-12)
    assert math.isclose(mean, 3.46746773226063, rel_tol=1e-12)


def test_cider_d_rewards_the_right_caption_most():
    refs = [split(r) for r in REFS]
    right, _ = cider_d([r[0] for r in refs], refs)
    shuffled, _ = cider_d([refs[(i + 1) % 4][0] for i in range(4)], refs)
    assert right > 3 * shuffled and shuffled < 1


def test_bleu4_on_word_tokens_with_ragged_references():
    refs = [split(r) for r in REFS]
    assert bleu4([r[-1] for r in refs], refs) == pytest.approx(1.0)        # each hypothesis is one of its references
    assert bleu4([["t-shirts"] * 4] * 4, refs) == 0.0
    zh = [[["两", "件", "衬衫", "在", "一", "只", "短靴", "的", "上面"]]]
    assert bleu4([zh[0][0]], zh) == pytest.approx(1.0)                      # Chinese words as they are
    one = bleu4([HYPS[1].split()], [refs[1]])
    # by hand: 3/5 unigrams, 2/4 bigrams, 1/3 trigrams, 0/2 4-grams (sacrebleu's default 'exp'
    # smoothing: 1 / (2 * 2)); brevity: 5 words against the closest reference's 6
    by_hand = math.exp(1 - 6 / 5) * (3 / 5 * 2 / 4 * 1 / 3 * 1 / 4) ** 0.25
    assert one == pytest.approx(by_hand, abs=1e-6)
    partial = bleu4([split(["two shirts above an ankle boot over"])[0]], [refs[1]])
    p = [6 / 7, 5 / 6, 4 / 5, 3 / 4]                                       # brevity penalty 1: longer than refs
    assert partial == pytest.approx(math.exp(sum(math.log(x) for x in p) / 4), abs=1e-4)


def test_box_coverage_and_attention_mass_by_hand():
    boxes = np.array([[0, 0, 8, 8], [8, 0, 12, 8], [-1, -1, -1, -1]])      # one cell and half the next
    cov = box_coverage(boxes, image_size=32, grid=4)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 1] = 1.0, 0.5
    np.testing.assert_array_equal(cov, expected)
    alpha = np.zeros(16)
    alpha[0], alpha[1], alpha[5] = 0.5, 0.25, 0.25
    on, chance = attention_on_boxes(alpha, cov)
    assert on == pytest.approx(0.5 + 0.125) and chance == pytest.approx(1.5 / 16)
    assert attention_on_boxes(np.full(16, 1 / 16), cov)[0] == pytest.approx(chance)
