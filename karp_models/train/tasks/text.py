"""Character language modelling over in-memory id tensors: random windows, exact evaluation.

Batches are random windows of block_size characters (karpathy/nanoGPT's get_batch, makemore).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.train import previews
from karp_models.train.tasks.base import Resident, as_device, fixed_subset

class CharLM:
    """Batches of (ids (B, T), next ids (B, T)) from a TextData: random windows of block_size.

    Evaluation scores every character of the split once, in non-overlapping windows (the last
    one shorter), so the full evaluation is the exact mean loss per character over the split.
    """

    unit = "tokens"
    eval_split = "validation"
    preview_every = 200
    timelapse = True            # keep whole-model snapshots over a run (train/timelapse.py)

    def __init__(self, data: Any, block_size: int):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.data = data
        self.block_size = int(block_size)
        self.splits = {
            "train": Resident(ids=torch.as_tensor(data.train_ids, dtype=torch.int64)),
            "validation": Resident(ids=torch.as_tensor(data.val_ids, dtype=torch.int64)),
        }
        for name, r in self.splits.items():
            if r.cpu["ids"].numel() < 2:
                raise ValueError(f"the {name} split of {getattr(data, 'name', 'the text')} "
                                 f"is too short")
        self.items_per_epoch = int(self.splits["train"].cpu["ids"].numel())

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size * self.block_size

    def _split(self, split: str) -> Resident:
        name = {"val": "validation", "test": "validation"}.get(split, split)
        if name not in self.splits:
            raise ValueError(f"unknown split {split!r}; text data has 'train' and 'validation'")
        return self.splits[name]

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None,
              augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of random windows: (x int64 (B, T), y int64 (B, T)) with y = x shifted by one."""
        device = as_device(device)
        ids = self._split(split).on(device)["ids"]
        T = min(self.block_size, ids.numel() - 1)
        starts = torch.randint(0, ids.numel() - T, (batch_size,), generator=generator).to(device)
        pos = starts[:, None] + torch.arange(T, device=device)  # (B, T)
        return ids[pos], ids[pos + 1]

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                      ctx: Any) -> torch.Tensor:
        """Mean next-character cross-entropy (with ctx.cfg.label_smoothing)."""
        x, y = batch
        if ctx.cfg.label_smoothing:
            logits, _ = model(x)
            return self.loss(logits, y, ctx.cfg.label_smoothing)
        return model(x, y)[1]

    def loss(self, logits: torch.Tensor, y: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        V = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, V).float(), y.reshape(-1),
                               label_smoothing=label_smoothing)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "validation", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """Mean loss (nats per character) and next-character accuracy.

        max_batches None: every character of the split once, in non-overlapping windows of
        block_size. Otherwise a fixed seeded subset of max_batches * batch_size of those windows.
        """
        device = as_device(device)
        ids = self._split(split).on(device)["ids"]
        T = self.block_size
        batch_size = batch_size or max(1, 65536 // T)  # about 64k characters a forward pass
        n_targets = ids.numel() - 1
        n_full = n_targets // T
        starts = torch.arange(n_full, device=device) * T  # windows that fit whole
        tail = n_targets - n_full * T
        if max_batches is not None and max_batches * batch_size < n_full:
            starts = starts[fixed_subset(n_full, max_batches * batch_size).to(device)]
            tail = 0
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        count = 0
        try:
            chunks = [starts[i:i + batch_size] for i in range(0, starts.numel(), batch_size)]
            if tail:
                chunks.append(None)
            for s in chunks:
                if s is None:  # the last, shorter window
                    pos = (n_full * T + torch.arange(tail, device=device))[None]  # (1, tail)
                else:
                    pos = s[:, None] + torch.arange(T, device=device)  # (B, T)
                x, y = ids[pos], ids[pos + 1]
                logits, _ = model(x)  # (B, T, V)
                logits = logits.float().reshape(-1, logits.shape[-1])  # (B*T, V)
                y = y.reshape(-1)
                loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(-1) == y).sum()
                count += y.numel()
        finally:
            model.train(was_training)
        return {"loss": loss_sum.item() / count, "accuracy": correct.item() / count}

    def preview(self, model: nn.Module, device: torch.device, step: int) -> previews.TextSample:
        """A fresh sample of the model's text (min-char-rnn's "sample every few hundred steps")."""
        return previews.sample_text(model, self.data, device, step)

    def meta(self) -> dict[str, Any]:
        return {"vocab": list(self.data.vocab)}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
