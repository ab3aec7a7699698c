"""Character-level RNN / LSTM / GRU language models with an explicit step loop that exposes every gate.

Cites: karpathy/char-rnn (the model and its Shakespeare recipe), karpathy/makemore (config style),
the PyTorch nn.RNN / nn.LSTM / nn.GRU docs (gate equations and weight layout the explain path mirrors).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- config

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]                   # h_n, or (h_n, c_n) for LSTM
GATES = {"rnn": (), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}   # PyTorch's row order in weight_ih


@dataclass(frozen=True)
class RNNConfig:
    cell: str = "lstm"            # 'rnn' (tanh) | 'lstm' | 'gru'
    vocab_size: int = 65
    n_embd: int = 64
    n_hidden: int = 256
    n_layer: int = 1
    dropout: float = 0.0          # on the embeddings, between layers and before the head
    block_size: int = 128         # context length used to train (generation carries state past it)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose from {tuple(CELLS)}")


# presets leave `cell` to the registry entry (rnn / lstm / gru)
PRESETS: dict[str, RNNConfig] = {
    "tiny": RNNConfig(n_embd=16, n_hidden=32, n_layer=1, block_size=16),
    "small": RNNConfig(n_embd=32, n_hidden=128, n_layer=1, block_size=64),
    "shakespeare": RNNConfig(n_embd=64, n_hidden=512, n_layer=1, dropout=0.0, block_size=128),
    "names": RNNConfig(n_embd=32, n_hidden=128, n_layer=1, dropout=0.2, block_size=32),
}

# ---------------------------------------------------------------------------- model


class CharRNN(nn.Module):
    """Embedding -> stacked recurrent cell -> linear head over the vocabulary."""

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.rnn = CELLS[c.cell](c.n_embd, c.n_hidden, num_layers=c.n_layer, batch_first=True,
                                 dropout=c.dropout if c.n_layer > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.lm_head = nn.Linear(c.n_hidden, c.vocab_size)

    def _run(self, idx: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        x = self.drop(self.wte(idx))                                 # (B, T, n_embd)
        out, hidden = self.rnn(x, hidden)                            # (B, T, n_hidden)
        return self.lm_head(self.drop(out)), hidden                  # (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, _ = self._run(idx)                                   # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    # ------------------------------------------------------------------------ explain path

    def forward_with_states(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Same maths as forward, one time step and one layer at a time, keeping every state and gate.

        Returns logits (B, T, V) and a dict of (B, T, n_layer, n_hidden) tensors: 'h' always, 'c' for
        LSTM, gates 'i', 'f', 'g', 'o' (LSTM) or 'r', 'z', 'n' (GRU) after their nonlinearity.
        """
        c = self.config
        B, T = idx.shape
        x = self.drop(self.wte(idx))                                 # (B, T, n_embd)
        keys = ("h", "c") + GATES[c.cell] if c.cell == "lstm" else ("h",) + GATES[c.cell]
        per_layer: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        for layer in range(c.n_layer):
            W_ih, W_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(self.rnn, f"bias_ih_l{layer}"), getattr(self.rnn, f"bias_hh_l{layer}")
            xw = x @ W_ih.T + b_ih                                   # (B, T, G*H): input part for all steps at once
            h = x.new_zeros(B, c.n_hidden)
            cell = x.new_zeros(B, c.n_hidden)
            steps: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
            for t in range(T):
                hw = h @ W_hh.T + b_hh                               # (B, G*H)
                if c.cell == "rnn":
                    h = torch.tanh(xw[:, t] + hw)
                    gates = {}
                elif c.cell == "lstm":
                    i, f, g, o = (xw[:, t] + hw).chunk(4, dim=-1)    # each (B, H)
                    gates = {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "g": torch.tanh(g), "o": torch.sigmoid(o)}
                    cell = gates["f"] * cell + gates["i"] * gates["g"]
                    h = gates["o"] * torch.tanh(cell)
                    gates["c"] = cell
                else:                                                # gru
                    xr, xz, xn = xw[:, t].chunk(3, dim=-1)
                    hr, hz, hn = hw.chunk(3, dim=-1)
                    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                    n = torch.tanh(xn + r * hn)
                    h = (1 - z) * n + z * h
                    gates = {"r": r, "z": z, "n": n}
                steps["h"].append(h)
                for k, v in gates.items():
                    steps[k].append(v)
            for k in keys:
                per_layer[k].append(torch.stack(steps[k], dim=1))   # (B, T, H)
            x = torch.stack(steps["h"], dim=1)                       # (B, T, H): input of the next layer
            if layer < c.n_layer - 1:
                x = F.dropout(x, c.dropout, self.training)
        logits = self.lm_head(self.drop(x))                          # (B, T, V)
        states = {k: torch.stack(v, dim=2) for k, v in per_layer.items()}  # (B, T, n_layer, H)
        return logits, states

    # ------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None) -> torch.Tensor:
        """Read the prompt once, then feed one token per step carrying the hidden state. (B, T) -> (B, T+new)."""
        out = [idx]
        logits, hidden = self._run(idx)                              # (B, T, V)
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[:, -1, :], temperature, top_k)      # (B, 1)
            out.append(nxt)
            logits, hidden = self._run(nxt, hidden)                  # (B, 1, V)
        return torch.cat(out, dim=1)


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """Sample one token per row from (B, V) logits; temperature 0 means greedy."""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)  # (B, 1)
