"""The live model's answers to a lesson's questions, and how close a learner's guess came: where Grad-CAM
looks (the share of its map inside the clicked region against the best region of that size), which
character comes next (the model's distribution), which attention head matters most for a behaviour
(ablation.knockout_map). Pure functions over arrays and models, no Streamlit.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from karp_models.introspect import ablation as ab
from karp_models.introspect import text as tx

GRID = 7          # the clickable grid over an image: 7 x 7 cells (4 x 4 pixels of a 28 x 28 image)
SPAN = 3          # a guess covers SPAN x SPAN cells around the clicked one
PASS = 0.7        # a guess within 70% of the best region's share is right


def cell_masses(cam: np.ndarray, grid: int = GRID) -> np.ndarray:
    """(grid, grid) the share of a non-negative map `cam` (H, W) in each cell (sums to 1; a map that is
    zero everywhere spreads evenly). Raises ValueError for a map that is not 2-D."""
    cam = np.clip(np.asarray(cam, dtype=np.float64), 0, None)
    if cam.ndim != 2:
        raise ValueError(f"a map is (H, W), got {cam.shape}")
    H, W = cam.shape
    rows = np.array_split(np.arange(H), grid)
    cols = np.array_split(np.arange(W), grid)
    m = np.array([[cam[np.ix_(r, c)].sum() for c in cols] for r in rows])
    total = m.sum()
    return m / total if total > 0 else np.full((grid, grid), 1.0 / grid ** 2)


def region_share(masses: np.ndarray, row: int, col: int, span: int = SPAN) -> float:
    """The map's share inside the span x span cells centred on (row, col), clipped at the edges."""
    h = span // 2
    return float(masses[max(0, row - h):row + h + 1, max(0, col - h):col + h + 1].sum())


@dataclass(frozen=True)
class RegionGrade:
    """share: the map's mass in the guessed region; best: the most any region of that size holds, at
    best_cell (row, col); score: share / best in [0, 1]; right: score >= PASS."""
    share: float
    best: float
    best_cell: tuple[int, int]
    score: float
    right: bool


def grade_region(cam: np.ndarray, row: int, col: int, *, grid: int = GRID, span: int = SPAN) -> RegionGrade:
    """How well a click at cell (row, col) of a grid x grid grid covers where the map `cam` (H, W) lies:
    overlap of the clicked span x span region with the map, against the best such region."""
    m = cell_masses(cam, grid)
    shares = np.array([[region_share(m, r, c, span) for c in range(grid)] for r in range(grid)])
    best_cell = tuple(int(i) for i in np.unravel_index(shares.argmax(), shares.shape))
    share, best = region_share(m, row, col, span), float(shares.max())
    score = share / best if best > 0 else 0.0
    return RegionGrade(share, best, best_cell, score, score >= PASS)


@dataclass(frozen=True)
class CharGrade:
    """top: the model's most likely next characters, most likely first, with probs; guess_prob: the
    probability of the guess (0 for a character the model does not know); right: guess is top[0]."""
    top: list[str]
    probs: np.ndarray
    guess_prob: float
    right: bool


def grade_next_char(model: nn.Module, ids: Sequence[int], vocab: Sequence[str], guess: str, k: int = 5) -> CharGrade:
    """The model's distribution over the character after `ids`, and the guess in it."""
    p = tx.next_char_probs(model, ids)[-1]                            # (V,)
    order = np.argsort(-p)[:k]
    guess_prob = float(p[list(vocab).index(guess)]) if guess in vocab else 0.0
    top = [vocab[i] for i in order]
    return CharGrade(top, p[order], guess_prob, bool(guess) and guess == top[0])


def head_ranking(model: nn.Module, ids: Sequence[int], text: str, behaviour: str = "closing a quote",
                 mode: str = "zero") -> list[tuple[ab.Site, float]]:
    """Every attention head knocked out in turn: (head, change of the behaviour's mean log-probability),
    the most needed (most negative) first. Raises ValueError when the text never shows the behaviour."""
    ko = ab.knockout_map(model, ids, ab.heads(model), ab.behaviour_mask(behaviour, text), mode=mode)
    order = np.argsort(ko.effect)
    return [(ko.sites[i], float(ko.effect[i])) for i in order]
