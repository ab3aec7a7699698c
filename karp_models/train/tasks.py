"""What a batch is: image classification and next-character prediction over in-memory tensors.

The only module that knows the shape of a batch. Batches are cut from tensors held in memory by
indexing with a torch.Generator (no DataLoader, no per-sample Python), as karpathy/nanoGPT's
get_batch and makemore do; augmentation is the classic CIFAR recipe (pad-and-crop plus flip,
He et al. 2016), vectorised over the batch.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

_EVAL_SEED = 1234  # fixed subset for interval evaluation: the same items every time

# --- helpers


def _as_device(device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def _fixed_subset(n: int, k: int) -> torch.Tensor:
    """k of range(n) chosen by a fixed seed (sorted): deterministic and spread over the split."""
    g = torch.Generator().manual_seed(_EVAL_SEED)
    return torch.randperm(n, generator=g)[:k].sort().values


class _Resident:
    """A split's tensors, copied to each device once and reused for every batch."""

    def __init__(self, **tensors: torch.Tensor):
        self._cpu = {k: torch.as_tensor(v) for k, v in tensors.items()}
        self._on: dict[str, dict[str, torch.Tensor]] = {}

    def on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device.type == "cpu":
            return self._cpu
        key = str(device)
        if key not in self._on:
            self._on[key] = {k: v.to(device) for k, v in self._cpu.items()}
        return self._on[key]


# --- image classification


class ImageClassification:
    """Batches of (float images in [0, 1] (B, C, H, W), int64 labels (B,)) from an ImageData.

    Train batches walk a fresh random permutation each epoch (the last partial batch of an epoch
    is dropped); with augment, every image gets a random shift of up to `pad` pixels (zero
    padding, then a crop back to H x W) and, only when data.flip_ok, a random horizontal flip.
    """

    unit = "samples"
    eval_split = "test"

    def __init__(self, data: Any, augment: bool = True, pad: int | None = None):
        self.data = data
        self.augment = augment
        self.flip_ok = bool(getattr(data, "flip_ok", False))
        self.splits = {
            "train": _Resident(x=data.train_x, y=data.train_y),
            "test": _Resident(x=data.test_x, y=data.test_y),
        }
        H = int(self.splits["train"]._cpu["x"].shape[-2])
        self.pad = pad if pad is not None else min(4, max(1, H // 8))  # 8x8 -> 1, 28 -> 3, 32 -> 4
        self.items_per_epoch = int(self.splits["train"]._cpu["x"].shape[0])
        self._order: torch.Tensor | None = None  # this epoch's permutation of the train split
        self._cursor = 0

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def _split(self, split: str) -> _Resident:
        name = {"val": "test", "validation": "test"}.get(split, split)
        if name not in self.splits:
            raise ValueError(f"unknown split {split!r}; image data has 'train' and 'test'")
        return self.splits[name]

    def _next_indices(self, n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the split ({n} items)")
        if self._order is None or self._cursor + batch_size > n:
            self._order = torch.randperm(n, generator=generator)
            self._cursor = 0
        idx = self._order[self._cursor:self._cursor + batch_size]
        self._cursor += batch_size
        return idx

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None,
              augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: (x float (B, C, H, W) in [0, 1], y int64 (B,)) on `device`.

        The 'train' split is sampled epoch by epoch and augmented when both `augment` and the
        task's own augment are on; other splits are sampled at random, never augmented.
        """
        device = _as_device(device)
        t = self._split(split).on(device)
        n = t["x"].shape[0]
        if split == "train":
            idx = self._next_indices(n, batch_size, generator)
        else:
            idx = torch.randint(0, n, (batch_size,), generator=generator)
        idx = idx.to(device)
        x, y = t["x"][idx], t["y"][idx]  # (B, C, H, W), (B,)
        if split == "train" and augment and self.augment:
            x = self._augment(x, generator)
        return self._to_float(x), y

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random shift by pad-and-crop (one gather for the whole batch), then optional flip."""
        B, C, H, W = x.shape
        p = self.pad
        shifts = torch.randint(0, 2 * p + 1, (2, B), generator=generator).to(x.device)  # (2, B)
        flip = torch.rand(B, generator=generator).to(x.device) < 0.5 if self.flip_ok else None
        if p > 0:
            xp = F.pad(x, (p, p, p, p)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
            rows = shifts[0, :, None] + torch.arange(H, device=x.device)  # (B, H)
            cols = shifts[1, :, None] + torch.arange(W, device=x.device)  # (B, W)
            b = torch.arange(B, device=x.device)[:, None, None]
            x = xp[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, C, H, W)
        if flip is not None:
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous()

    @staticmethod
    def _to_float(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def loss(self, logits: torch.Tensor, y: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)

    def distill_loss(self, logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor,
                     alpha: float, temperature: float = 0.0,
                     label_smoothing: float = 0.0) -> torch.Tensor:
        """(1 - alpha) * CE(labels) + alpha * the teacher's term.

        temperature 0: hard distillation, CE against the teacher's top class (DeiT, Touvron et
        al. 2021); else soft, KL(teacher || student) at that temperature, times T^2 (Hinton et
        al. 2015) so its gradients keep their scale.
        """
        logits, teacher_logits = logits.float(), teacher_logits.float()
        ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if temperature == 0:
            teach = F.cross_entropy(logits, teacher_logits.argmax(-1), label_smoothing=label_smoothing)
        else:
            T = temperature
            teach = F.kl_div(F.log_softmax(logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                             reduction="batchmean", log_target=True) * T * T
        return (1 - alpha) * ce + alpha * teach

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "test", max_batches: int | None = None,
                 batch_size: int = 256) -> dict[str, float]:
        """Mean cross-entropy and accuracy over the split (all of it when max_batches is None,
        else a fixed seeded subset of max_batches * batch_size images). Deterministic.

        Batches of 256 ran the fast CNN's test set about twice as fast as 1,000 on a 2-core CPU.
        """
        device = _as_device(device)
        t = self._split(split).on(device)
        n = t["x"].shape[0]
        idx = None
        if max_batches is not None and max_batches * batch_size < n:
            idx = _fixed_subset(n, max_batches * batch_size).to(device)
            n = idx.numel()
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        nhwc = bool(getattr(model, "feature_layers", None))  # CNNs: the trainer's memory format
        try:
            for i in range(0, n, batch_size):
                sel = idx[i:i + batch_size] if idx is not None else slice(i, i + batch_size)
                x, y = self._to_float(t["x"][sel]), t["y"][sel]
                if nhwc:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.no_grad():
                    logits, _ = model(x)  # (B, n_classes)
                logits = logits.float()
                loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(-1) == y).sum()
        finally:
            model.train(was_training)
        return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n}

    def state_dict(self) -> dict[str, Any]:
        return {"order": self._order, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        order = state.get("order")
        self._order = order.to("cpu", torch.int64) if order is not None else None
        self._cursor = int(state.get("cursor", 0))


# --- character language modelling


class CharLM:
    """Batches of (ids (B, T), next ids (B, T)) from a TextData: random windows of block_size.

    Evaluation scores every character of the split once, in non-overlapping windows (the last
    one shorter), so the full evaluation is the exact mean loss per character over the split.
    """

    unit = "tokens"
    eval_split = "validation"

    def __init__(self, data: Any, block_size: int):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.data = data
        self.block_size = int(block_size)
        self.splits = {
            "train": _Resident(ids=torch.as_tensor(data.train_ids, dtype=torch.int64)),
            "validation": _Resident(ids=torch.as_tensor(data.val_ids, dtype=torch.int64)),
        }
        for name, r in self.splits.items():
            if r._cpu["ids"].numel() < 2:
                raise ValueError(f"the {name} split of {getattr(data, 'name', 'the text')} "
                                 f"is too short")
        self.items_per_epoch = int(self.splits["train"]._cpu["ids"].numel())

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size * self.block_size

    def _split(self, split: str) -> _Resident:
        name = {"val": "validation", "test": "validation"}.get(split, split)
        if name not in self.splits:
            raise ValueError(f"unknown split {split!r}; text data has 'train' and 'validation'")
        return self.splits[name]

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None,
              augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of random windows: (x int64 (B, T), y int64 (B, T)) with y = x shifted by one."""
        device = _as_device(device)
        ids = self._split(split).on(device)["ids"]
        T = min(self.block_size, ids.numel() - 1)
        starts = torch.randint(0, ids.numel() - T, (batch_size,), generator=generator).to(device)
        pos = starts[:, None] + torch.arange(T, device=device)  # (B, T)
        return ids[pos], ids[pos + 1]

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
        device = _as_device(device)
        ids = self._split(split).on(device)["ids"]
        T = self.block_size
        batch_size = batch_size or max(1, 65536 // T)  # about 64k characters a forward pass
        n_targets = ids.numel() - 1
        n_full = n_targets // T
        starts = torch.arange(n_full, device=device) * T  # windows that fit whole
        tail = n_targets - n_full * T
        if max_batches is not None and max_batches * batch_size < n_full:
            starts = starts[_fixed_subset(n_full, max_batches * batch_size).to(device)]
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

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


# --- choice


def make_task(data: Any, model: nn.Module, augment: bool = True,
              block_size: int | None = None, shift: int | None = None) -> ImageClassification | CharLM:
    """The task for a data set: CharLM for text (it has a vocab), ImageClassification otherwise.

    block_size defaults to model.config.block_size; shift (images) to the task's own pad.
    """
    if hasattr(data, "vocab"):
        if block_size is None:
            block_size = getattr(getattr(model, "config", None), "block_size", None)
        if block_size is None:
            raise ValueError("text needs a block_size: the model's config has none; "
                             "pass block_size=")
        return CharLM(data, int(block_size))
    return ImageClassification(data, augment=augment, pad=shift)
