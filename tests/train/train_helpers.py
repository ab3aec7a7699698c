"""Tiny models and synthetic data for the training tests (no dependence on data/ or models/)."""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- models, following the house conventions


@dataclass(frozen=True)
class TinyNetConfig:
    in_channels: int = 1
    image_size: int = 8
    n_classes: int = 4
    hidden: int = 32
    dropout: float = 0.1


class TinyNet(nn.Module):
    """conv -> batchnorm -> relu -> linear -> dropout -> linear."""

    def __init__(self, config: TinyNetConfig):
        super().__init__()
        self.config = config
        c = config
        self.conv = nn.Conv2d(c.in_channels, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * c.image_size * c.image_size, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.n_classes)

    def forward(self, x, targets=None):
        h = F.relu(self.bn(self.conv(x)))  # (B, 8, H, W)
        logits = self.head(self.drop(F.relu(self.fc(h.flatten(1)))))  # (B, n_classes)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


@dataclass(frozen=True)
class TinyLMConfig:
    vocab_size: int = 4
    block_size: int = 8
    n_embd: int = 16


class TinyLM(nn.Module):
    """A bigram model with tied input/output embeddings (exercises shared tensors)."""

    def __init__(self, config: TinyLMConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.ln = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Linear(config.n_embd, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx, targets=None):
        h = self.wte(idx)  # (B, T, C)
        h = h + self.mlp(self.ln(h))
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


BUILDERS = {"tinynet": (TinyNet, TinyNetConfig), "tinylm": (TinyLM, TinyLMConfig)}


def from_config(name: str, config: dict) -> nn.Module:
    model_cls, cfg_cls = BUILDERS[name]  # KeyError for an unknown name, as a registry would
    return model_cls(cfg_cls(**config))


def install_fake_registry(monkeypatch) -> types.ModuleType:
    """Make `karp_models.models.from_config` the tiny builders above, for this test only."""
    import karp_models

    fake = types.ModuleType("karp_models.models")
    fake.from_config = from_config
    fake.REGISTRY = dict(BUILDERS)
    monkeypatch.setitem(sys.modules, "karp_models.models", fake)
    monkeypatch.setattr(karp_models, "models", fake, raising=False)
    return fake


# --- data


def quadrant_images(n_train: int = 512, n_test: int = 256, size: int = 8, seed: int = 0,
                    flip_ok: bool = False) -> SimpleNamespace:
    """4 classes: the bright quadrant is the label (a flip would change it: flip_ok False)."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.randint(0, 4, (n,), generator=g)
        x = torch.randint(0, 60, (n, 1, size, size), generator=g)
        h = size // 2
        for k in range(4):
            r, c = divmod(k, 2)
            x[y == k, :, r * h:(r + 1) * h, c * h:(c + 1) * h] += 180
        return x.clamp(0, 255).to(torch.uint8), y.long()

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return SimpleNamespace(name="quadrants", classes=("tl", "tr", "bl", "br"), train_x=train_x,
                           train_y=train_y, test_x=test_x, test_y=test_y, flip_ok=flip_ok,
                           mean=(0.3,), std=(0.3,))


def id_images(n: int = 64, size: int = 8, channels: int = 3,
              flip_ok: bool = False) -> SimpleNamespace:
    """Random images whose label is their index, to trace each sample through a batch."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 256, (n, channels, size, size), generator=g).to(torch.uint8)
    y = torch.arange(n)
    return SimpleNamespace(name="ids", classes=tuple(map(str, range(n))), train_x=x, train_y=y,
                           test_x=x.clone(), test_y=y.clone(), flip_ok=flip_ok)


def cyclic_text(n_train: int = 2000, n_val: int = 501, noise: float = 0.1,
                seed: int = 0) -> SimpleNamespace:
    """'abcd' repeated with a few random characters: a bigram model learns it well."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        ids = torch.arange(n) % 4
        flip = torch.rand(n, generator=g) < noise
        ids[flip] = torch.randint(0, 4, (int(flip.sum()),), generator=g)
        return ids.long()

    return SimpleNamespace(name="cyclic", vocab=("a", "b", "c", "d"), train_ids=make(n_train),
                           val_ids=make(n_val))
