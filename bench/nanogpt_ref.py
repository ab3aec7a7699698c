"""nanoGPT's character-level CPU recipe, re-implemented for a side-by-side run with karp's GPT.

Model: karpathy/nanoGPT model.py (commit 3adf61e): LayerNorm with optional bias, causal
self-attention through F.scaled_dot_product_attention, GELU MLP 4x, token embedding tied to
lm_head, learned position table, N(0, 0.02) init with c_proj weights at 0.02 / sqrt(2 n_layer);
forward(idx, targets) -> (logits, mean cross-entropy).
Recipe: the README's CPU command

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
      --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
      --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

with config/train_shakespeare_char.py's learning_rate 1e-3, min_lr 1e-4, beta2 0.99,
warmup_iters 100, and train.py's defaults: bias False, weight_decay 0.1 on every >= 2-D
parameter (embeddings included; configure_optimizers), beta1 0.9, grad_clip 1.0, get_lr (linear
warmup (it + 1) / (warmup + 1), cosine to min_lr at lr_decay_iters), float32 on CPU, get_batch's
uniform random windows. Only the data differs from nanoGPT's: karp's `data.load("shakespeare")`
text and train/validation split, the same for both sides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class RefConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False


@dataclass(frozen=True)
class RefRecipe:
    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    max_iters: int = 2000
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0

    def lr(self, it: int) -> float:
        """train.py's get_lr."""
        if it < self.warmup_iters:
            return self.learning_rate * (it + 1) / (self.warmup_iters + 1)
        if it > self.lr_decay_iters:
            return self.min_lr
        ratio = (it - self.warmup_iters) / (self.lr_decay_iters - self.warmup_iters)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.learning_rate - self.min_lr)


class LayerNorm(nn.Module):
    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c: RefConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = nn.Dropout(c.dropout)
        self.n_head, self.n_embd, self.dropout = c.n_head, c.n_embd, c.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                           dropout_p=self.dropout if self.training else 0, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, c: RefConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c: RefConfig) -> None:
        super().__init__()
        self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), CausalSelfAttention(c)
        self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    def __init__(self, c: RefConfig) -> None:
        super().__init__()
        self.config = c
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.vocab_size, c.n_embd), wpe=nn.Embedding(c.block_size, c.n_embd),
            drop=nn.Dropout(c.dropout), h=nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
            ln_f=LayerNorm(c.n_embd, c.bias)))
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """nanoGPT's count: every parameter once, less the position table when non_embedding."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) ids -> logits (B, T, V) and the mean loss with targets; without targets, as
        nanoGPT, the last position's logits only (B, 1, V)."""
        pos = torch.arange(idx.size(1), dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    def configure_optimizers(self, r: RefRecipe) -> torch.optim.AdamW:
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": r.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=r.learning_rate, betas=(r.beta1, r.beta2))


def param_formula(c: RefConfig) -> int:
    """Parameters of nanoGPT's model by hand (bias False, tied head): embeddings V*C + T*C;
    per layer two LayerNorm gains 2C, attention 3C*C + C*C, MLP 4C*C + 4C*C; final gain C."""
    C = c.n_embd
    return c.vocab_size * C + c.block_size * C + c.n_layer * (2 * C + 4 * C * C + 8 * C * C) + C


class RefRun:
    """nanoGPT's training loop, one iteration at a time: step() draws a batch (get_batch's
    uniform windows), sets get_lr(it), forward/backward, clips at 1.0 and steps AdamW."""

    def __init__(self, train_ids: torch.Tensor, vocab_size: int, seed: int = 1337,
                 recipe: RefRecipe = RefRecipe(), config: RefConfig | None = None) -> None:
        torch.manual_seed(seed)
        self.config = config or RefConfig(vocab_size=vocab_size)
        self.recipe = recipe
        self.model = RefGPT(self.config)
        self.optimizer = self.model.configure_optimizers(recipe)
        self.data = train_ids
        self.it = 0
        self.generator = torch.Generator().manual_seed(seed)

    def get_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        T, B = self.config.block_size, self.recipe.batch_size
        ix = torch.randint(len(self.data) - T, (B,), generator=self.generator)
        pos = ix[:, None] + torch.arange(T)
        return self.data[pos], self.data[pos + 1]

    def step(self) -> float:
        for g in self.optimizer.param_groups:
            g["lr"] = self.recipe.lr(self.it)
        x, y = self.get_batch()
        _, loss = self.model(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.it += 1
        return loss.item()

    @property
    def tokens(self) -> int:
        return self.it * self.recipe.batch_size * self.config.block_size


class _AllLogits(nn.Module):
    """RefGPT seen as karp's models are: forward(x) -> (logits (B, T, V), None), for karp's evaluation."""

    def __init__(self, model: RefGPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.model(x, torch.zeros_like(x))[0], None


def time_to_loss(run: RefRun, task: object, target: float, *, every: int = 50, start: int = 0,
                 eval_batches: int = 8, eval_batch_size: int = 64) -> tuple[float | None, int, float]:
    """Train `run` until karp's interval evaluation (task.evaluate on the same fixed validation
    subset as karp's run), every `every` iterations from iteration `start` on, is at or below
    target, or max_iters. Returns (seconds of training to that evaluation, None if never reached;
    iterations; last subset loss). Evaluation time is NOT counted: the reference is timed in its
    favour."""
    import time

    clock, loss = 0.0, float("inf")
    while run.it < run.recipe.max_iters:
        t0 = time.perf_counter()
        run.step()
        clock += time.perf_counter() - t0
        if run.it >= start and run.it % every == 0:
            loss = task.evaluate(_AllLogits(run.model), "cpu", max_batches=eval_batches,
                                 batch_size=eval_batch_size)["loss"]
            run.model.train()
            if loss <= target:
                return clock, run.it, loss
    return None, run.it, loss
