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


# --- one image, word by word


def _tiny(attention: bool, seed: int = 0):
    from dataclasses import replace

    import torch

    from karp_models.models.captioning import PRESETS, Captioner

    torch.manual_seed(seed)
    return Captioner(replace(PRESETS["tiny"], attention=attention, vocab_size=12, image_size=32,
                             max_len=6, dropout=0.0)).eval()


VOCAB = ("<pad>", "<s>", "</s>", "<unk>", "a", "bag", "sneaker", "left", "of", "two", "bags", "above")


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_describe_at_width_one_is_the_models_greedy_caption(attention, seed):
    import torch

    from karp_models.introspect.captions import describe

    m = _tiny(attention, seed)
    x = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(seed))
    cap, beam1 = describe(m, x, VOCAB), describe(m, x, VOCAB, width=1)
    dec = m.greedy(x[None])
    toks = dec.tokens[0].tolist()
    n = toks.index(2) if 2 in toks else len(toks)
    assert cap.words == tuple(VOCAB[t] for t in toks[:n]) and cap.ended == (2 in toks)
    assert len(cap.probs) == n + cap.ended
    np.testing.assert_allclose(cap.probs, dec.probs[0, :len(cap.probs)].numpy(), rtol=1e-6)
    beam = m.beam_search(x[None], width=1)                                 # beam search of width 1
    assert tuple(VOCAB[t] for t in beam.tokens[0].tolist()[:n]) == beam1.words == cap.words
    assert math.isclose(cap.log_prob, float(np.log(dec.probs[0, :len(cap.probs)].numpy()).sum()), rel_tol=1e-5)
    if attention:
        assert cap.attention.shape == (len(cap.probs), m.grid, m.grid)
        np.testing.assert_allclose(cap.attention.sum((1, 2)), 1.0, atol=1e-5)   # a distribution per word
        assert (cap.attention >= 0).all()
    else:
        assert cap.attention is None


def test_a_wider_beam_is_never_less_likely_and_maps_sum_to_one():
    import torch

    from karp_models.introspect.captions import describe

    m = _tiny(True, 5)
    for seed in range(4):
        x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(seed))
        greedy, beam = describe(m, x, VOCAB), describe(m, x, VOCAB, width=6)
        if greedy.ended and beam.ended:
            assert beam.log_prob >= greedy.log_prob - 1e-5
        np.testing.assert_allclose(beam.attention.sum((1, 2)), 1.0, atol=1e-5)
        assert beam.width == 6 and len(beam.probs) == len(beam.words) + beam.ended
    with pytest.raises(ValueError):
        describe(m, x, VOCAB, width=0)
    with pytest.raises(ValueError):
        describe(m, torch.rand(2, 1, 32, 32), VOCAB)


def test_greedy_words_of_a_batch_match_describe():
    import torch

    from karp_models.introspect.captions import describe, greedy_words

    m = _tiny(True, 1)
    x = (torch.rand(7, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    assert greedy_words(m, x, VOCAB, batch_size=3) == [describe(m, x[i], VOCAB).words for i in range(7)]


def test_noun_looks_measure_a_words_map_on_its_items():
    from karp_models.introspect.captions import Caption, noun_looks

    att = np.zeros((4, 8, 8))
    att[0, 0, 0] = 1.0                                   # "a": anywhere
    att[1, :2, :2] = 0.25                                # "bag": all on the top-left 16x16 pixels
    att[2] = 1 / 64                                      # "left": uniform
    att[3, 7, 7] = 1.0                                   # "</s>"
    cap = Caption(("a", "bag", "left"), (0.9, 0.8, 0.7, 0.6), att, True, 1)
    boxes = np.array([[0, 0, 16, 16], [40, 40, 56, 56], [-1, -1, -1, -1]])
    looks = noun_looks(cap, {"bag": 8, "bags": 8, "sneaker": 7}, boxes, np.array([8, 7, -1]), 64)
    assert [(lk.step, lk.word, lk.cls) for lk in looks] == [(1, "bag", 8)]
    assert looks[0].on_item == pytest.approx(1.0) and looks[0].chance == pytest.approx(256 / 4096)
    assert noun_looks(Caption(("a", "bag"), (0.9, 0.8), None, False, 1), {"bag": 8}, boxes,
                      np.array([8, 7, -1]), 64) == []
