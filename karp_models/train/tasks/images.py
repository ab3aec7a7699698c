"""Image classification over in-memory uint8 tensors: batches, augmentation, loss, evaluation.

Augmentation is the classic CIFAR recipe (pad-and-crop plus flip, He et al. 2016), vectorised
over the batch, each part on or off; adversarial training is Madry et al. 2018's (PGD batches);
distillation's loss follows DeiT (hard) and Hinton et al. 2015 (soft).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models import device as dev
from karp_models.introspect.adversarial import pgd, robust_accuracy
from karp_models.train import previews
from karp_models.train.tasks.base import Resident, as_device, fixed_subset

# --- image classification


class ImageClassification:
    """Batches of (float images in [0, 1] (B, C, H, W), int64 labels (B,)) from an ImageData.

    Train batches walk a fresh random permutation each epoch (the last partial batch of an epoch
    is dropped); with augment, every image gets a random shift of up to `pad` pixels (zero
    padding, then a crop back to H x W; pad 0: none) and, when flip and data.flip_ok, a random
    horizontal flip. With augment off (or pad 0 and no flip) a batch is the stored images.

    robust: a PGD attack {"epsilon", "steps", "step_size", "items"} that final evaluations also
    measure robust accuracy under (on the first `items` test images); None: clean only.
    """

    unit = "samples"
    eval_split = "test"
    preview_every = 50
    timelapse = True            # keep whole-model snapshots over a run (train/timelapse.py)

    def __init__(self, data: Any, augment: bool = True, pad: int | None = None, flip: bool = True,
                 robust: dict[str, Any] | None = None):
        self.data = data
        self.augment = augment
        self.flip_ok = bool(getattr(data, "flip_ok", False)) and flip
        self.robust = dict(robust) if robust else None
        self.splits = {
            "train": Resident(x=data.train_x, y=data.train_y),
            "test": Resident(x=data.test_x, y=data.test_y),
        }
        H = int(self.splits["train"].cpu["x"].shape[-2])
        self.pad = pad if pad is not None else min(4, max(1, H // 8))  # 8x8 -> 1, 28 -> 3, 32 -> 4
        self.items_per_epoch = int(self.splits["train"].cpu["x"].shape[0])
        self._order: torch.Tensor | None = None  # this epoch's permutation of the train split
        self._cursor = 0
        self._grid: tuple[torch.Tensor, torch.Tensor] | None = None  # the preview's test images

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def _split(self, split: str) -> Resident:
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
        device = as_device(device)
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

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                      ctx: Any) -> torch.Tensor:
        """Cross-entropy of a batch (with ctx.cfg.label_smoothing), in the model's memory format;
        with ctx.cfg.adv_eps > 0, of the batch's PGD attack (adversarial_batch) instead."""
        x, y = batch
        if getattr(ctx.cfg, "adv_eps", 0.0) > 0:
            x = self.adversarial_batch(model, x, y, ctx.cfg)
        if dev.prefers_channels_last(model):
            x = x.contiguous(memory_format=torch.channels_last)
        if ctx.cfg.label_smoothing:
            logits, _ = model(x)
            return self.loss(logits, y, ctx.cfg.label_smoothing)
        return model(x, y)[1]

    @staticmethod
    def adversarial_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Any) -> torch.Tensor:
        """Madry et al. 2018's inner maximisation: x (B, C, H, W) in [0, 1] replaced by its PGD
        attack from a random start in the L-inf ball of cfg.adv_eps (cfg.adv_steps steps of
        cfg.adv_step_size), with the model in the mode it is in; autocast off for the attack."""
        with torch.autocast(x.device.type, enabled=False):
            return pgd(model, x.float(), y, epsilon=cfg.adv_eps, steps=cfg.adv_steps,
                       step_size=cfg.adv_step_size, random_start=True)

    def evaluate_robust(self, model: nn.Module, device: torch.device | str | None = None,
                        robust: dict[str, Any] | None = None) -> dict[str, float]:
        """Robust accuracy under `robust` (default: the task's own; see the class), on the first
        robust['items'] test images (all of them if absent): {"robust_accuracy"}, or {} when
        there is no attack to measure. Deterministic (PGD from the clean images)."""
        r = robust or self.robust
        if not r:
            return {}
        t = self._split("test").cpu
        n = min(int(r.get("items") or t["y"].shape[0]), int(t["y"].shape[0]))
        model = model.to(as_device(device))
        res = robust_accuracy(model, t["x"][:n], t["y"][:n], epsilon=float(r["epsilon"]),
                              steps=int(r["steps"]), step_size=r.get("step_size"))
        return {"robust_accuracy": res.robust}

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
        device = as_device(device)
        t = self._split(split).on(device)
        n = t["x"].shape[0]
        idx = None
        if max_batches is not None and max_batches * batch_size < n:
            idx = fixed_subset(n, max_batches * batch_size).to(device)
            n = idx.numel()
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        nhwc = dev.prefers_channels_last(model)  # CNNs: the trainer's memory format
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

    def preview(self, model: nn.Module, device: torch.device, step: int) -> previews.Predictions:
        """The model's guesses on 16 fixed test images, and its first conv layer's weights."""
        if self._grid is None:
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(len(self.data.test_y), generator=g)[:previews.GRID]
            self._grid = (self.data.test_x[idx].clone(), self.data.test_y[idx].clone())
        return previews.predict_grid(model, *self._grid, tuple(self.data.classes), device, step)

    def meta(self) -> dict[str, Any]:
        """The classes, and the attack the robust accuracy was measured under (if any)."""
        out: dict[str, Any] = {"classes": list(self.data.classes)}
        if self.robust:
            out["robust"] = {"attack": "PGD", "norm": "Linf", **self.robust}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"order": self._order, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        order = state.get("order")
        self._order = order.to("cpu", torch.int64) if order is not None else None
        self._cursor = int(state.get("cursor", 0))


def augmentation_examples(data: Any, n: int = 12, *, augment: bool = True, shift: int | None = None,
                          flip: bool = True, seed: int = 0
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first n images of a training batch as stored and as the trainer sees them: the
    task's own batch() twice from the same seed (so the same images), without and with the
    augmentation asked for (shift: pixels, None the task's own, 0 none; flip: where data allows).

    Returns (stored (n, C, H, W), augmented (n, C, H, W)) floats in [0, 1] and labels (n,).
    """
    plain = ImageClassification(data, augment=False)
    seen = ImageClassification(data, augment=augment, pad=shift, flip=flip)
    x0, y = plain.batch("train", n, torch.Generator().manual_seed(seed))
    x1, y1 = seen.batch("train", n, torch.Generator().manual_seed(seed))
    assert torch.equal(y, y1)  # the same draw of images: only the augmentation differs
    return x0, x1, y
