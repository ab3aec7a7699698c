"""A captioner's caption of one image, word by word (each word's probability and attention map),
scores of captions against their references, and of attention maps against item boxes.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

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


# ---------------------------------------------------------------------------- one image, word by word

@dataclass(frozen=True)
class Caption:
    """A caption a model wrote for one image, word by word.

    words: the caption without </s>; probs: the probability the model gave each word when it
    wrote it, then </s>'s when the caption ended (len(words) + ended values); attention: (len(probs),
    g, g), the map over the encoder's g x g grid each of those was written with (each sums to 1),
    or None for a model without attention; ended: False when cut at the model's max_len;
    width: the beam's width (1: greedy decoding).
    """

    words: tuple[str, ...]
    probs: tuple[float, ...]
    attention: np.ndarray | None
    ended: bool
    width: int

    @property
    def log_prob(self) -> float:
        """The caption's log-probability, nats (what beam search maximises)."""
        return float(sum(math.log(max(p, 1e-45)) for p in self.probs))

    def text(self, language: str = "en") -> str:
        """As a person writes it: words spaced in English, joined in Chinese."""
        return ("" if language == "zh" else " ").join(self.words)


def _as_batch(model: torch.nn.Module, image: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float()
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.size(0) != 1:
        raise ValueError(f"one image (C, H, W) or (1, C, H, W), not shape {tuple(x.shape)}")
    return x.to(next(model.parameters()).device)


@torch.no_grad()
def describe(model: torch.nn.Module, image: np.ndarray | torch.Tensor, vocab: Sequence[str],
             width: int = 1) -> Caption:
    """Caption one image with a Captioner (models/captioning.py) in eval mode.

    Args:
        image: (C, H, W) or (1, C, H, W), float in [0, 1] or uint8, the model's input size.
        vocab: the model's words by id (a checkpoint's meta['vocab']).
        width: 1 for greedy decoding (the most likely word at each step), more for beam search
            (Sutskever et al. 2014) keeping `width` hypotheses.
    Returns:
        Caption: words, each word's probability, the attention map of each step (g, g).
    Raises:
        ValueError: more than one image, or a width below 1.
    """
    if width < 1:
        raise ValueError(f"a beam's width is at least 1, not {width}")
    x = _as_batch(model, image)
    dec = model.greedy(x) if width == 1 else model.beam_search(x, width=width)
    toks = dec.tokens[0].tolist()
    eos = int(model.config.eos)
    n = toks.index(eos) if eos in toks else len(toks)
    ended = eos in toks
    steps = n + int(ended)
    words = tuple(vocab[t] if 0 <= t < len(vocab) else "<unk>" for t in toks[:n])
    probs = tuple(float(p) for p in dec.probs[0, :steps].tolist())
    att = None
    if dec.alphas is not None:
        g = model.grid
        att = dec.alphas[0, :steps].float().cpu().numpy().reshape(steps, g, g)
    return Caption(words, probs, att, ended, width)


@torch.no_grad()
def greedy_words(model: torch.nn.Module, images: torch.Tensor, vocab: Sequence[str],
                 batch_size: int = 250) -> list[tuple[str, ...]]:
    """Greedy captions of many images (N, C, H, W) uint8, in batches: each a tuple of words."""
    dev = next(model.parameters()).device
    eos = int(model.config.eos)
    out: list[tuple[str, ...]] = []
    for chunk in images.split(batch_size):
        toks = model.greedy(chunk.to(dev).float() / 255.0).tokens.cpu().tolist()
        for row in toks:
            row = row[:row.index(eos)] if eos in row else row
            out.append(tuple(vocab[t] for t in row if t not in (model.config.pad, model.config.bos)))
    return out


@dataclass(frozen=True)
class NounLook:
    """Where the model looked while writing a noun: `step` in the caption, the class it names,
    the share of that step's attention on the boxes of the scene's items of that class, and a
    uniform map's share (the boxes' share of the image: chance)."""

    step: int
    word: str
    cls: int
    on_item: float
    chance: float


def noun_looks(caption: Caption, noun_class: Mapping[str, int], boxes: np.ndarray, classes: np.ndarray,
               image_size: int) -> list[NounLook]:
    """For each noun of `caption` that names a class the scene has (noun_class: word -> class,
    data.grammar.noun_classes), how much of its attention fell on those items' boxes (K, 4)
    (x0, y0, x1, y1 in pixels, end exclusive; classes (K,), -1 rows ignored). [] without attention."""
    if caption.attention is None:
        return []
    boxes, classes = np.asarray(boxes), np.asarray(classes)
    g = caption.attention.shape[-1]
    out = []
    for t, w in enumerate(caption.words):
        c = noun_class.get(w, -1)
        if c >= 0 and (classes == c).any():
            on, chance = attention_on_boxes(caption.attention[t].reshape(-1),
                                            box_coverage(boxes[classes == c], image_size, g))
            out.append(NounLook(t, w, c, on, chance))
    return out
