"""Scores of captions against their references, and of attention maps against item boxes.

BLEU-4 is sacrebleu's corpus BLEU (Post 2018) on our own word tokens (tokenize='none': Chinese
captions are already split into words). CIDEr-D (Vedantam et al. 2015) follows pycocoevalcap's
CiderScorer line for line (n-grams 1-4, tf-idf with document frequencies over the evaluated
references, clipped counts, a Gaussian length penalty with sigma 6, times 10): no maintained
package computes it without a heavy stack (pycocoevalcap 1.2, last released in 2020, is a
104 MB wheel of Java jars; aac-metrics needs transformers; torchmetrics has none), and
tests/introspect/test_captions.py checks ours against numbers pycocoevalcap 1.2 computed.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

Words = Sequence[str]

# ---------------------------------------------------------------------------- BLEU


def bleu4(hypotheses: Sequence[Words], references: Sequence[Sequence[Words]]) -> float:
    """Corpus BLEU-4 in [0, 1] of word lists against each one's references (1..R word lists)."""
    from sacrebleu.metrics import BLEU

    R = max(len(r) for r in references)
    streams = [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(R)]
    score = BLEU(tokenize="none", effective_order=False).corpus_score(
        [" ".join(h) for h in hypotheses], streams)
    return score.score / 100.0

# ---------------------------------------------------------------------------- CIDEr-D


def _ngrams(words: Words, n: int = 4) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def cider_d(hypotheses: Sequence[Words], references: Sequence[Sequence[Words]],
            n: int = 4, sigma: float = 6.0) -> tuple[float, np.ndarray]:
    """CIDEr-D of each hypothesis and their mean (pycocoevalcap's Cider().compute_score).

    Its quirks are kept so the numbers compare with published ones: the length in the penalty
    counts bigrams, and the idf uses log(number of images) - log(document frequency).
    """
    grams: dict[tuple, Counter] = {}                   # a caption's n-grams, counted once per corpus

    def count(words: Words) -> Counter:
        key = tuple(words)
        if key not in grams:
            grams[key] = _ngrams(key, n)
        return grams[key]

    refs = [[tuple(r) for r in rs] for rs in references]
    df: dict[tuple, float] = defaultdict(float)
    for rs in refs:
        for g in {g for r in rs for g in count(r)}:
            df[g] += 1
    log_n = math.log(float(len(refs)))
    vecs: dict[tuple, tuple] = {}

    def vec(words: tuple) -> tuple[list[dict], list[float], int]:
        if words in vecs:
            return vecs[words]
        v: list[dict] = [defaultdict(float) for _ in range(n)]
        norm, length = [0.0] * n, 0
        for g, tf in count(words).items():
            k = len(g) - 1
            v[k][g] = float(tf) * (log_n - math.log(max(1.0, df.get(g, 0.0))))
            norm[k] += v[k][g] ** 2
            if k == 1:
                length += tf
        vecs[words] = v, [math.sqrt(x) for x in norm], length
        return vecs[words]

    sims: dict[tuple, np.ndarray] = {}

    def sim(hyp: tuple, ref: tuple) -> np.ndarray:
        """Clipped cosine similarity per n, times the length penalty."""
        if (hyp, ref) not in sims:
            (vh, nh, lh), (vr, nr, lr) = vec(hyp), vec(ref)
            val = np.zeros(n)
            for k in range(n):
                val[k] = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val[k] /= nh[k] * nr[k]
            sims[hyp, ref] = val * math.exp(-((lh - lr) ** 2) / (2 * sigma ** 2))
        return sims[hyp, ref]

    scores = []
    for hyp, rs in zip(hypotheses, refs):
        total = sum(sim(tuple(hyp), r) for r in rs)
        scores.append(total.mean() / len(rs) * 10.0)
    s = np.array(scores)
    return float(s.mean()) if len(s) else 0.0, s

# ---------------------------------------------------------------------------- attention on boxes


def box_coverage(boxes: np.ndarray, image_size: int, grid: int) -> np.ndarray:
    """The share of each grid cell that the union of `boxes` (K, 4) (x0, y0, x1, y1 in pixels,
    end exclusive; rows of -1 ignored) covers: (grid, grid) in [0, 1]."""
    mask = np.zeros((image_size, image_size), np.float64)
    for x0, y0, x1, y1 in boxes:
        if x0 >= 0:
            mask[y0:y1, x0:x1] = 1.0
    cell = image_size // grid
    return mask.reshape(grid, cell, grid, cell).mean(axis=(1, 3))


def attention_on_boxes(alpha: np.ndarray, coverage: np.ndarray) -> tuple[float, float]:
    """How much of one attention map (grid * grid,) falls on the boxes: sum_i alpha_i * coverage_i,
    and what a uniform map would get (the boxes' share of the image), the chance level."""
    c = coverage.reshape(-1)
    return float((alpha * c).sum()), float(c.mean())
