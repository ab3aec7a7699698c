"""RNN neurons over text: per-step cell and hidden traces, a search for interpretable cells, gate saturation.

Cites: Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"
(arXiv:1506.02078): cells that track quotes, line length and bracket depth (their Fig. 2), and the
gate-saturation plot (their Fig. 3: for each cell, the fraction of steps a gate is left-saturated
< 0.1 against right-saturated > 0.9). Karpathy's 2015 char-rnn post for the text coloured by a cell.
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


def signals(text: str) -> dict[str, np.ndarray]:
    """Indicator signals over a text, one value per character (T,), for the cell search.

    inside quotes: 1 from an opening '"' up to its closing '"' (both included), else 0.
    position in line: characters since the last newline (0 at the start of a line).
    bracket depth: how many ( [ { are open at this character, counting the opening one.
    """
    T = len(text)
    quote, pos, depth = np.zeros(T), np.zeros(T), np.zeros(T)
    inside, col, d = False, 0, 0
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
            quote[t] = 1.0                                            # both quote marks count as inside
        else:
            quote[t] = float(inside)
        pos[t] = col
        col = 0 if ch == "\n" else col + 1
        if ch in "([{":
            d += 1
        depth[t] = d
        if ch in ")]}":
            d = max(d - 1, 0)
    return {N_("inside quotes"): quote, N_("position in line"): pos, N_("bracket depth"): depth}

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
