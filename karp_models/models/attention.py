"""Transformers: a character-level GPT and a small Vision Transformer sharing one attention block.

Cites: karpathy/nanoGPT model.py (GPTConfig, pre-LN Block, CausalSelfAttention, init, generate),
Dosovitskiy et al. 2020 "An Image is Worth 16x16 Words" (patch embedding, CLS token, ViT head).
GPT options (off by default, so older weights load unchanged): rotary position embeddings (Su et
al. 2021, RoFormer), QK-norm (Henry et al. 2020; RMS-normalised queries and keys as in
KellerJordan/modded-nanogpt), ReLU squared MLP (So et al. 2021, Primer).
The explain path computes softmax(QK^T / sqrt(d) + mask) explicitly so the weights can be returned;
the fast path is F.scaled_dot_product_attention, and tests check the two agree. On the CPU,
training with dropout takes the explicit path with karp's `dropout` (its mask drawn by rand), and a
GPT with a wide vocabulary trains through `linear_cross_entropy` (no (B T, V) logits); issue 25.
Those operations and rotary embeddings are in transformer_ops.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rnn import sample_next
from .transformer_ops import Dropout, apply_rotary, linear_cross_entropy, rotary_tables

# ---------------------------------------------------------------------------- configs


ACTIVATIONS = ("gelu", "relu2")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 128         # longest context the position table covers
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True             # biases in Linear and LayerNorm (nanoGPT's switch)
    tie_weights: bool = False     # share wte and lm_head (off: safetensors refuses shared tensors)
    rotary: bool = False          # rotary position embeddings on queries and keys instead of the wpe table
    qk_norm: bool = False         # RMS-normalise each head's queries and keys before their dot product
    activation: str = "gelu"      # MLP non-linearity: "gelu" or "relu2" (ReLU squared)

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be divisible by n_head")
        if self.rotary and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary embeddings need an even head size (n_embd / n_head)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")


@dataclass(frozen=True)
class ViTConfig:
    in_channels: int = 1
    image_size: int = 28
    patch_size: int = 4
    n_classes: int = 10
    n_embd: int = 128
    n_layer: int = 6
    n_head: int = 4
    mlp_ratio: int = 2
    dropout: float = 0.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be divisible by n_head")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean/std need {self.in_channels} values (one per channel)")


GPT_PRESETS: dict[str, GPTConfig] = {
    "nano": GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32),
    "small": GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128),          # nanoGPT's CPU recipe
    "shakespeare": GPTConfig(block_size=128, n_layer=4, n_head=4, n_embd=192, dropout=0.0),
    "names": GPTConfig(block_size=32, n_layer=4, n_head=4, n_embd=64),           # makemore's transformer
}

VIT_PRESETS: dict[str, ViTConfig] = {
    # patch 7 (16 patches) beat patch 4 (49) at equal CPU time: 86.9% vs 81.9% Fashion-MNIST test after 394 s
    "fashion": ViTConfig(patch_size=7, n_embd=96, n_layer=4, n_head=4, mlp_ratio=2),
    "fashion-p4": ViTConfig(patch_size=4, n_embd=96, n_layer=4, n_head=4, mlp_ratio=2),  # finer maps, ~3x cost
    "tiny": ViTConfig(patch_size=7, n_embd=32, n_layer=1, n_head=2),
}


def fit_patch(base: ViTConfig, values: dict) -> dict:
    """Unless the caller chose patch_size, shrink it to the largest divisor of image_size (32 -> 4, 8 -> 4)."""
    if "patch_size" in values:
        return values
    size, p = values.get("image_size", base.image_size), base.patch_size
    while size % p:
        p -= 1
    return {**values, "patch_size": p}

# ---------------------------------------------------------------------------- shared block


class SelfAttention(nn.Module):
    """Multi-head self-attention; causal for GPT, full for ViT. rotary_len > 0: rotary position
    embeddings for positions below it; qk_norm: queries and keys RMS-normalised per head."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool,
                 rotary_len: int = 0, qk_norm: bool = False) -> None:
        super().__init__()
        self.n_head, self.causal, self.dropout, self.qk_norm = n_head, causal, dropout, qk_norm
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)
        self.rotary = rotary_len > 0
        if self.rotary:  # not in the state dict: recomputed from the config
            cos, sin = rotary_tables(rotary_len, n_embd // n_head)
            self.register_buffer("rot_cos", cos, persistent=False)
            self.register_buffer("rot_sin", sin, persistent=False)

    def _heads(self, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values split into heads: (B, T, C) -> 3 x (B, nh, T, hs), with QK-norm
        and rotary embeddings (x's first position being `start`) when on."""
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)
        if self.qk_norm or self.rotary:  # queries and keys together: half the small ops
            qk = qkv[:, :, :2]                                       # (B, T, 2, nh, hs)
            if self.qk_norm:
                qk = F.rms_norm(qk, (qk.size(-1),))
            if self.rotary:
                cos = self.rot_cos[start:start + T, None, None]      # (T, 1, 1, hs / 2)
                qk = apply_rotary(qk, cos, self.rot_sin[start:start + T, None, None])
            q, k = qk.unbind(2)
            v = qkv[:, :, 2]
        else:
            q, k, v = qkv.unbind(2)                                  # 3 x (B, T, nh, hs)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        q, k, v = self._heads(x)                                     # 3 x (B, nh, T, hs)
        # CPU SDPA with dropout falls back to these same explicit maths (with bernoulli_): spell
        # them out then, with the faster `dropout`
        cpu_dropout = self.training and self.dropout > 0 and x.device.type == "cpu"
        if not return_weights and not cpu_dropout:                   # fast path: fused kernel, no weights
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=self.causal)
            weights = None
        else:                                                        # explain path: the same maths, spelled out
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, nh, T, T)
            if self.causal:
                future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
                att = att.masked_fill(future, float("-inf"))
            weights = F.softmax(att, dim=-1)                         # rows sum to 1
            y = self.attn_dropout(weights) @ v                       # (B, nh, T, hs)
            weights = weights if return_weights else None
        y = y.transpose(1, 2).contiguous().view(B, T, C)             # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), weights

    def forward_kv(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Incremental decoding: attend from x to the cached keys/values plus x's own; return the cache grown.

        With no past, x is a whole (causal) context; with a past, x is one new position (B, 1, C),
        which may see every cached key, so no mask is needed.
        """
        B, T, C = x.shape
        q, k, v = self._heads(x, 0 if past is None else past[0].size(2))
        if past is not None:
            if T != 1:
                raise ValueError("with a cache, feed one position at a time")
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)   # (B, nh, t + 1, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal and past is None)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), (k, v)


class ReLU2(nn.Module):
    """ReLU squared (So et al. 2021, Primer): relu(x)^2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class MLP(nn.Module):
    def __init__(self, n_embd: int, hidden: int, dropout: float, bias: bool, activation: str = "gelu") -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
        self.gelu = nn.GELU() if activation == "gelu" else ReLU2()  # the name kept for hooks and older code
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))   # (B, T, C)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool, mlp_ratio: int = 4,
                 rotary_len: int = 0, qk_norm: bool = False, activation: str = "gelu") -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, dropout, bias, causal, rotary_len, qk_norm)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, mlp_ratio * n_embd, dropout, bias, activation)

    def forward(self, x: torch.Tensor, return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.ln_1(x), return_weights)
        x = x + a
        return x + self.mlp(self.ln_2(x)), weights

    def forward_kv(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, present = self.attn.forward_kv(self.ln_1(x), past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


def _init_weights(module: nn.Module, n_layer: int) -> None:
    """nanoGPT init: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 * n_layer)."""
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 0.02
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- GPT

FUSED_HEAD_VOCAB = 1024  # from this vocabulary up, training's head and loss go by linear_cross_entropy


class GPT(nn.Module):
    """Character-level GPT: token + position embeddings (or rotary ones), causal pre-LN blocks, linear head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = c = config
        layers = dict(wte=nn.Embedding(c.vocab_size, c.n_embd))
        if not c.rotary:  # rotary embeddings carry the positions inside attention: no table
            layers["wpe"] = nn.Embedding(c.block_size, c.n_embd)
        self.transformer = nn.ModuleDict(dict(
            **layers,
            drop=Dropout(c.dropout),
            h=nn.ModuleList(Block(c.n_embd, c.n_head, c.dropout, c.bias, causal=True,
                                  rotary_len=c.block_size if c.rotary else 0, qk_norm=c.qk_norm,
                                  activation=c.activation) for _ in range(c.n_layer)),
            ln_f=nn.LayerNorm(c.n_embd, bias=c.bias),
        ))
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        _init_weights(self, c.n_layer)
        if c.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def _embed(self, idx: torch.Tensor, start: int) -> torch.Tensor:
        """Token embeddings plus, without rotary embeddings, those of positions start.. (B, T) -> (B, T, C)."""
        x = self.transformer.wte(idx)
        if self.config.rotary:
            return x
        return x + self.transformer.wpe(torch.arange(start, start + idx.size(1), device=idx.device))

    def _run(self, idx: torch.Tensor, return_weights: bool, head: bool = True
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        x = self.transformer.drop(self._embed(idx, 0))              # (B, T, C)
        maps = []
        for block in self.transformer.h:
            x, w = block(x, return_weights)
            maps.append(w)
        x = self.transformer.ln_f(x)                                 # (B, T, C)
        return (self.lm_head(x) if head else x), maps                # (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits (B, T, V) and, given targets (B, T) (-1: ignored), the mean next-token loss.

        Training on the CPU with a vocabulary of at least FUSED_HEAD_VOCAB, the loss comes from
        linear_cross_entropy and the logits are never materialised: (None, loss).
        """
        if (targets is not None and self.training and torch.is_grad_enabled() and idx.device.type == "cpu"
                and self.config.vocab_size >= FUSED_HEAD_VOCAB):
            h, _ = self._run(idx, return_weights=False, head=False)     # (B, T, C)
            return None, linear_cross_entropy(h.reshape(-1, h.size(-1)), self.lm_head.weight, targets.reshape(-1))
        logits, _ = self._run(idx, return_weights=False)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def forward_with_attention(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V) and one (B, n_head, T, T) attention map per layer (explicit softmax path)."""
        return self._run(idx, return_weights=True)

    @torch.no_grad()
    def forward_cached(self, idx: torch.Tensor, cache: list | None = None) -> tuple[torch.Tensor, list]:
        """Logits (B, V) of the last position and the key/value cache, for generation in O(T) per token.

        cache None: idx (B, T) is a fresh context of at most block_size. Else idx is the next
        position (B, 1), placed after the cached ones; the cache cannot grow past block_size
        (absolute positions): start again from a shorter window then.
        """
        past = 0 if cache is None else cache[0][0].size(2)
        T = idx.size(1)
        if past + T > self.config.block_size:
            raise ValueError(f"context of {past + T} is longer than block_size {self.config.block_size}")
        x = self._embed(idx, past)                                  # (B, T, C)
        present = []
        for i, block in enumerate(self.transformer.h):
            x, kv = block.forward_kv(x, None if cache is None else cache[i])
            present.append(kv)
        return self.lm_head(self.transformer.ln_f(x[:, -1])), present  # (B, V)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None) -> torch.Tensor:
        """Append max_new_tokens sampled tokens, cropping the context to block_size. (B, T) -> (B, T+new)."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])       # (B, t, V)
            idx = torch.cat([idx, sample_next(logits[:, -1, :], temperature, top_k)], dim=1)
        return idx


# ---------------------------------------------------------------------------- ViT


class ViT(nn.Module):
    """Vision Transformer on float input in [0, 1]: patches -> CLS + positions -> blocks -> head on CLS."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = c = config
        C, g = c.in_channels, c.image_size // c.patch_size
        self.grid = (g, g)                                           # patches per side
        self.register_buffer("mean", torch.tensor(c.mean, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.patch_embed = nn.Conv2d(C, c.n_embd, c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.n_embd))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + g * g, c.n_embd))
        self.drop = Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.n_embd, c.n_head, c.dropout, True, causal=False, mlp_ratio=c.mlp_ratio)
                                    for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.n_classes)
        _init_weights(self, c.n_layer)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        # no spatial conv maps here; token_layers output (B, 1 + P, C), reshape tokens 1: to `grid`
        self.feature_layers: list[str] = []
        self.token_layers: list[str] = [f"blocks.{i}" for i in range(c.n_layer)]

    def _run(self, x: torch.Tensor, return_weights: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = (x - self.mean) / self.std                               # (B, C, H, W)
        x = self.patch_embed(x).flatten(2).transpose(1, 2)           # (B, P, D)
        cls = self.cls_token.expand(x.size(0), -1, -1)               # (B, 1, D)
        x = self.drop(torch.cat([cls, x], dim=1) + self.pos_embed)   # (B, 1 + P, D)
        maps = []
        for block in self.blocks:
            x, w = block(x, return_weights)
            maps.append(w)
        return self.head(self.ln_f(x[:, 0])), maps                   # (B, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, _ = self._run(x, return_weights=False)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, n_classes) and one (B, n_head, 1 + P, 1 + P) attention map per layer; token 0 is CLS."""
        return self._run(x, return_weights=True)
