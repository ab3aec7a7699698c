"""RNN neurons over text: per-step cell and hidden traces, a search for interpretable cells, gate saturation.

Cites: Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"
(arXiv:1506.02078): cells that track quotes, line length and bracket depth (their Fig. 2), and the
gate-saturation plot (their Fig. 3: for each cell, the fraction of steps a gate is left-saturated
< 0.1 against right-saturated > 0.9). Karpathy's 2015 char-rnn post for the text coloured by a cell.
Chinese verse's twin of the line-length cell: position in the phrase, five- against seven-character
phrases and the two phrases of a couplet (verse_signals; issue 17, item 3).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from karp_models.i18n import N_

# sigmoid gates only: the paper's saturation plot skips tanh outputs (LSTM g, GRU n)
SIGMOID_GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z"), "rnn": ()}
GATE_NAMES = {"i": N_("input gate"), "f": N_("forget gate"), "o": N_("output gate"), "r": N_("reset gate"),
              "z": N_("update gate")}
LOW, HIGH = 0.1, 0.9

# ---------------------------------------------------------------------------- traces


@torch.no_grad()
def traces(model: nn.Module, ids: Sequence[int] | torch.Tensor) -> dict[str, np.ndarray]:
    """Every state and gate of a CharRNN at every step of one text, via model.forward_with_states.

    Returns a dict of (T, n_layer, n_hidden) float arrays: 'h' always, 'c' for an LSTM, and the gates
    'i', 'f', 'g', 'o' (LSTM) or 'r', 'z', 'n' (GRU) after their nonlinearity.
    """
    device = next(model.parameters()).device
    idx = torch.as_tensor(ids, dtype=torch.long, device=device).reshape(1, -1)   # (1, T)
    _, states = model.forward_with_states(idx)                                  # each (1, T, L, H)
    return {k: v[0].float().cpu().numpy() for k, v in states.items()}


def state_names(cell: str) -> dict[str, str]:
    """The traces worth colouring text by, in words: the LSTM's cell state first (the paper's choice)."""
    if cell == "lstm":
        return {"c": N_("cell state c"), "h": N_("hidden state h = o · tanh(c)")}
    return {"h": N_("hidden state h")}

# ---------------------------------------------------------------------------- signals


PHRASE_END = "，。？！；"       # the marks that close a phrase of Chinese verse (and prose)
OPEN, CLOSE = "([{（《〈", ")]}）》〉"


def signals(text: str) -> dict[str, np.ndarray]:
    """Signals over a text, one value per character (T,), for the cell search, the most telling first.

    position in line: characters since the last newline (0 at the start of a line).
    inside quotes: 1 from an opening '"' or '“' up to its closing '"' or '”' (both included), else 0.
    bracket depth: how many ( [ { （ 《 〈 are open at this character, counting the opening one.

    A text with Chinese phrase marks (，。？！；) gets the verse signals first (verse_signals).
    """
    T = len(text)
    quote, pos, depth = np.zeros(T), np.zeros(T), np.zeros(T)
    inside, col, d = False, 0, 0
    for t, ch in enumerate(text):
        if ch in '"“”':
            inside = not inside if ch == '"' else ch == "“"
            quote[t] = 1.0                                            # both quote marks count as inside
        else:
            quote[t] = float(inside)
        pos[t] = col
        col = 0 if ch == "\n" else col + 1
        if ch in OPEN:
            d += 1
        depth[t] = d
        if ch in CLOSE:
            d = max(d - 1, 0)
    out = {N_("position in line"): pos, N_("inside quotes"): quote, N_("bracket depth"): depth}
    if any(ch in PHRASE_END for ch in text):
        out = verse_signals(text) | out
    return out


def verse_signals(text: str) -> dict[str, np.ndarray]:
    """The line structure of Chinese verse, one value per character (T,): the twin of Karpathy's line-length
    cell for poems written in lines of two phrases (床前明月光，疑是地上霜。).

    A phrase is the characters after a phrase mark (，。？！；) or a line start, up to and including the next
    phrase mark; a newline starts a line and belongs to no phrase.

    position in phrase: characters since the last phrase mark or line start (0 on a phrase's first character;
        its closing mark gets the phrase's length, as a newline gets the line's in 'position in line').
    seven-character phrase: +1 on a phrase of seven characters and its mark, -1 on one of five, 0 elsewhere
        (other lengths, a line without a mark such as a 《title》, newlines).
    second phrase of the couplet: 1 on the even-numbered phrases of a line (the second, fourth, ...) and their
        marks, 0 on the odd-numbered ones and on newlines.
    """
    T = len(text)
    pos, seven, second = np.zeros(T), np.zeros(T), np.zeros(T)
    col, k, begin = 0, 0, 0                                           # column in the phrase, phrase index in the line
    for t, ch in enumerate(text):
        if ch == "\n":
            pos[t], col, k, begin = col, 0, 0, t + 1
            continue
        pos[t] = col
        second[t] = k % 2
        if ch in PHRASE_END:
            seven[begin:t + 1] = {7: 1.0, 5: -1.0}.get(t - begin, 0.0)
            col, k, begin = 0, k + 1, t + 1
        else:
            col += 1
    return {N_("position in phrase"): pos, N_("seven-character phrase"): seven,
            N_("second phrase of the couplet"): second}

# ---------------------------------------------------------------------------- search


@dataclass(frozen=True)
class CellScore:
    cell: int           # index in the layer's state vector
    layer: int
    score: float        # Pearson correlation of the trace with the signal, in [-1, 1]


def correlations(trace: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of trace (T, H) with signal (T,): (H,); 0 where either is constant."""
    x = trace - trace.mean(axis=0)                                    # (T, H)
    s = signal - signal.mean()                                        # (T,)
    denom = np.sqrt((x ** 2).sum(axis=0) * (s ** 2).sum())            # (H,)
    r = (s @ x) / np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, r, 0.0)


def search_cells(state: np.ndarray, signal: np.ndarray, top: int = 10) -> list[CellScore]:
    """Cells ranked by |correlation| with the signal, best first.

    Args:
        state: (T, n_layer, H) trace, e.g. traces(...)["c"]; or (T, H) for one layer.
        signal: (T,) one of signals(text).
    """
    if state.ndim == 2:
        state = state[:, None, :]
    T, L, H = state.shape
    if len(signal) != T:
        raise ValueError(f"signal has {len(signal)} values, the trace {T} steps")
    r = np.stack([correlations(state[:, layer], signal) for layer in range(L)])   # (L, H)
    order = np.argsort(-np.abs(r), axis=None)[:top]
    return [CellScore(cell=int(i % H), layer=int(i // H), score=float(r.flat[i])) for i in order]

# ---------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateSaturation:
    """How often each sigmoid gate is nearly closed (< 0.1) or nearly open (> 0.9).

    Attributes:
        gate: 'i', 'f', 'o' (LSTM) or 'r', 'z' (GRU).
        left: (n_layer, H) per cell, the fraction of steps with the gate < 0.1.
        right: (n_layer, H) per cell, the fraction of steps with the gate > 0.9.
    """
    gate: str
    left: np.ndarray
    right: np.ndarray

    @property
    def name(self) -> str:
        return GATE_NAMES.get(self.gate, self.gate)


def gate_saturation(states: dict[str, np.ndarray], cell: str) -> list[GateSaturation]:
    """Per gate and cell, the fractions of left- and right-saturated steps (the paper's Fig. 3)."""
    out = []
    for g in SIGMOID_GATES[cell]:
        v = states[g]                                                 # (T, L, H)
        out.append(GateSaturation(g, (v < LOW).mean(axis=0), (v > HIGH).mean(axis=0)))
    return out
