"""Sequence-to-sequence with additive attention: a bidirectional GRU encoder and a GRU decoder that
looks back at every source character before writing each output character.

Cites: Bahdanau, Cho and Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and
Translate" (the additive score e_ij = v^T tanh(W s_{i-1} + U h_j), the decoder's initial state
tanh(W_s h_1 backward), and the alignment matrix alpha as the explanation); the PyTorch
"NLP From Scratch: Translation with a Sequence to Sequence Network and Attention" tutorial
(teacher forcing, greedy decoding). The decoder runs one step at a time on both paths, so the
weights it returns are the ones it used.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Seq2SeqConfig:
    src_vocab: int = 60           # dates.SRC: padding, <unk>, 58 characters (Latin and Chinese)
    tgt_vocab: int = 14           # dates.TGT: padding, <s>, </s>, 11 characters
    n_embd: int = 32              # character embedding size, source and target
    enc_hidden: int = 64          # per direction; the annotations h_j are 2 * enc_hidden wide
    dec_hidden: int = 128
    attn_dim: int = 64            # width of the additive score's hidden layer
    dropout: float = 0.0
    max_len: int = 12             # longest output greedy decoding writes (with </s>)
    pad: int = 0
    bos: int = 1
    eos: int = 2


PRESETS: dict[str, Seq2SeqConfig] = {
    "tiny": Seq2SeqConfig(n_embd=8, enc_hidden=16, dec_hidden=32, attn_dim=16),  # tests
    "dates": Seq2SeqConfig(),  # the live page: >= 95% held-out exact match in ~200 steps
    "dates-wide": Seq2SeqConfig(n_embd=48, enc_hidden=128, dec_hidden=256, attn_dim=128),
}

# ---------------------------------------------------------------------------- attention


class AdditiveAttention(nn.Module):
    """alpha_ij = softmax_j(v^T tanh(W s_{i-1} + U h_j)), masked over padding; context = sum_j alpha_ij h_j."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """U h_j, computed once per source: (B, S, 2H) -> (B, S, A)."""
        return self.U(h)

    def forward(self, s: torch.Tensor, Uh: torch.Tensor, h: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.v(torch.tanh(self.W(s).unsqueeze(1) + Uh)).squeeze(-1)   # (B, S)
        e = e.masked_fill(~mask, float("-inf"))
        alpha = F.softmax(e, dim=-1)                                       # (B, S), rows sum to 1
        context = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)              # (B, 2H)
        return context, alpha

# ---------------------------------------------------------------------------- model


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder, GRU decoder with Bahdanau attention, linear head over the targets."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        self.src_emb = nn.Embedding(c.src_vocab, c.n_embd, padding_idx=c.pad)
        self.encoder = nn.GRU(c.n_embd, c.enc_hidden, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(c.enc_hidden, c.dec_hidden)         # s_0 = tanh(W h_1 backward)
        self.attention = AdditiveAttention(c.dec_hidden, 2 * c.enc_hidden, c.attn_dim)
        self.tgt_emb = nn.Embedding(c.tgt_vocab, c.n_embd, padding_idx=c.pad)
        self.decoder = nn.GRUCell(c.n_embd + 2 * c.enc_hidden, c.dec_hidden)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.dec_hidden + 2 * c.enc_hidden + c.n_embd, c.tgt_vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Annotations h (B, S, 2H), the padding mask (B, S) and the decoder's first state (B, D)."""
        mask = src != self.config.pad                                      # (B, S)
        lengths = mask.sum(1).clamp(min=1)
        x = self.drop(self.src_emb(src))                                   # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)                                    # h_n: (2, B, H)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, 2H)
        s0 = torch.tanh(self.init_state(h_n[1]))                           # backward direction read all of it
        return h, mask, s0

    def _step(self, y_prev: torch.Tensor, s: torch.Tensor, h: torch.Tensor, Uh: torch.Tensor,
              mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One output character: attend with s_{i-1}, update the state, score the vocabulary."""
        context, alpha = self.attention(s, Uh, h, mask)                    # (B, 2H), (B, S)
        emb = self.drop(self.tgt_emb(y_prev))                              # (B, E)
        s = self.decoder(torch.cat([emb, context], -1), s)                 # (B, D)
        logits = self.head(self.drop(torch.cat([s, context, emb], -1)))    # (B, V)
        return logits, s, alpha

    def forward_with_attention(self, src: torch.Tensor, tgt: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits (B, T, V) for the targets `tgt` (B, T), and alignments (B, T, S)."""
        h, mask, s = self.encode(src)
        Uh = self.attention.keys(h)                                        # (B, S, A)
        y_prev = torch.cat([tgt.new_full((tgt.size(0), 1), self.config.bos), tgt[:, :-1]], 1)  # (B, T)
        logits, alphas = [], []
        for t in range(tgt.size(1)):
            lg, s, a = self._step(y_prev[:, t], s, h, Uh, mask)
            logits.append(lg)
            alphas.append(a)
        return torch.stack(logits, 1), torch.stack(alphas, 1)              # (B, T, V), (B, T, S)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, T, V), mean cross-entropy over non-padding targets); without tgt, greedy logits."""
        if tgt is None:
            _, _, logits = self._greedy(src, self.config.max_len)
            return logits, None
        logits, _ = self.forward_with_attention(src, tgt)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1),
                               ignore_index=self.config.pad)
        return logits, loss

    # ------------------------------------------------------------------------ decoding

    def _greedy(self, src: torch.Tensor, max_len: int, min_len: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        never = torch.zeros(c.tgt_vocab, dtype=torch.bool, device=src.device)
        never[[c.pad, c.bos]] = True                                       # not outputs, only markers
        h, mask, s = self.encode(src)
        Uh = self.attention.keys(h)
        y = src.new_full((src.size(0),), self.config.bos)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        tokens, alphas, logits = [], [], []
        for i in range(max_len):
            lg, s, a = self._step(y, s, h, Uh, mask)
            banned = never.clone()
            banned[c.eos] = i < min_len                                    # no </s> before min_len outputs
            y = lg.masked_fill(banned, float("-inf")).argmax(-1)           # (B,)
            y = y.masked_fill(done, self.config.pad)                       # finished rows write padding
            tokens.append(y)
            alphas.append(a)
            logits.append(lg)
            done |= y == self.config.eos
            if bool(done.all()):
                break
        return torch.stack(tokens, 1), torch.stack(alphas, 1), torch.stack(logits, 1)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int | None = None, min_len: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, T) (after </s>: padding) and the alignment (B, T, S) each output step used.
        min_len: how many outputs come before </s> is allowed (a task whose answers have a fixed length)."""
        tokens, alphas, _ = self._greedy(src, max_len or self.config.max_len, min_len)
        return tokens, alphas
