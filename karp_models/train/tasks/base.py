"""The Task protocol: what the one Trainer, the job queue and the live views need of a model family.

A Task says what a batch is, what a training step's loss (or losses) is, how to evaluate, what
its live preview shows and, when it needs more than one, its optimisers (Lightning's
LightningModule: training_step and configure_optimizers). Batches are cut from tensors held in
memory with a torch.Generator (karpathy/nanoGPT's get_batch), so a run is reproducible and
resumable from the generator's state alone.

How the families to come plug in:
- a GAN is a Task whose configure_optimizers returns {'discriminator': ..., 'generator': ...}
  and whose training_step calls ctx.step('discriminator', d_loss), then
  ctx.step('generator', g_loss), returning {'loss': ..., 'd_loss': ..., 'g_loss': ...,
  'D(x)': ..., 'D(G(z))': ...}; the extra names reach the curves as Record.scalars.
- fine-tuning (finetune.py) is a Task over a model whose backbone has requires_grad False: the
  default optimiser (make_optimizer) only takes trainable parameters, and its
  configure_optimizers gives the pretrained layers their own 'lr_scale' (discriminative
  learning rates); its setup(model) loads the pretrained weights at a fresh run's start.
- seq2seq and captioning are Tasks whose batches are (source, target) sequences.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn

from karp_models import device as dev

EVAL_SEED = 1234  # fixed subset for interval evaluation: the same items every time


@runtime_checkable
class Task(Protocol):
    """What a model family gives the Trainer. Optional: configure_optimizers(model, cfg, device)
    -> {name: optimizer} (default: one, from trainer.make_optimizer), preview(model, device,
    step) -> a frozen preview for the live view and preview_every (steps between them),
    meta() -> JSON-able facts a checkpoint needs (classes, vocabulary), state_dict() and
    load_state_dict() (where it is in its data, for resuming), setup(model) (what a fresh run
    starts from beyond the model's own initialisation: fine-tuning's pretrained weights; not
    called on resume), timelapse = True (keep whole-model snapshots at its previews for the
    time-lapse views, train/timelapse.py)."""

    unit: str              # what throughput counts: 'samples' or 'tokens'
    items_per_epoch: int   # units in one pass over the training split
    eval_split: str        # the held-out split evaluate() uses by default

    def items_per_batch(self, batch_size: int) -> int: ...

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None, augment: bool = True) -> Any: ...

    def training_step(self, model: nn.Module, batch: Any, ctx: Any
                      ) -> torch.Tensor | dict[str, torch.Tensor]: ...

    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str | None = None, max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]: ...


# --- helpers shared by the tasks


def as_device(device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def fixed_subset(n: int, k: int) -> torch.Tensor:
    """k of range(n) chosen by a fixed seed (sorted): deterministic and spread over the split."""
    g = torch.Generator().manual_seed(EVAL_SEED)
    return torch.randperm(n, generator=g)[:k].sort().values


class Resident:
    """A split's tensors, copied to each device once and reused for every batch."""

    def __init__(self, **tensors: torch.Tensor):
        self.cpu = {k: torch.as_tensor(v) for k, v in tensors.items()}
        self._on: dict[str, dict[str, torch.Tensor]] = {}

    def on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device.type == "cpu":
            return self.cpu
        key = str(device)
        if key not in self._on:
            self._on[key] = {k: v.to(device) for k, v in self.cpu.items()}
        return self._on[key]


def metric_names(task: Any) -> tuple[str, str]:
    """The names a checkpoint's metrics go under: ('test_loss', 'test_accuracy') for a task
    evaluated on a test split, ('val_loss', 'val_accuracy') for one with a validation split."""
    prefix = "test" if getattr(task, "eval_split", "test") == "test" else "val"
    return f"{prefix}_loss", f"{prefix}_accuracy"


def final_metrics(task: Any, model: nn.Module, device: torch.device | str,
                  record: Any = None) -> dict[str, float]:
    """The task's evaluation on its whole held-out split, under the checkpoint's metric names;
    with the robust accuracy too when the task measures one (an image task with an attack).

    record: the Trainer's final Record of a run that was not cut short by quick_stop; its
    evaluation already covered the whole split, so it is taken instead of scoring it again.
    """
    if record is not None and record.final and record.val_loss is not None:
        m = {"loss": record.val_loss, "accuracy": record.val_accuracy,
             **{k[4:]: v for k, v in record.scalars.items() if k.startswith("val_")}}
    else:
        m = task.evaluate(model, device)
    m.update(getattr(task, "evaluate_robust", lambda *a: {})(model, device))
    loss, acc = metric_names(task)
    out = {loss: m["loss"]}
    if m.get("accuracy") is not None:
        out[acc] = m["accuracy"]
    out.update({f"{loss.split('_')[0]}_{k}": v for k, v in m.items() if k not in ("loss", "accuracy")})
    return out


# --- knowledge distillation: any task with a distill_loss, and a teacher


class Distillation:
    """`task` trained with knowledge distillation from `teacher`, a trained model of the same
    task that is only run (eval mode, no gradients, never stepped): the loss is the task's
    distill_loss with ctx.cfg.distill_alpha and distill_temperature. Everything else is the
    task's own (batches, evaluation, previews)."""

    def __init__(self, task: Any, teacher: nn.Module):
        if not hasattr(task, "distill_loss"):
            raise ValueError(f"{type(task).__name__} has no distillation loss")
        self.task = task
        self.teacher = teacher.eval().requires_grad_(False)
        self._on: torch.device | None = None  # the device the teacher was moved to
        self._nhwc = dev.prefers_channels_last(teacher)  # decided once, not on every step
        if self._nhwc:
            self.teacher.to(memory_format=torch.channels_last)

    def training_step(self, model: nn.Module, batch: Any, ctx: Any) -> torch.Tensor:
        x, y = batch
        if getattr(ctx.cfg, "adv_eps", 0.0) > 0 and hasattr(self.task, "adversarial_batch"):
            x = self.task.adversarial_batch(model, x, y, ctx.cfg)  # teacher and student see the attack
        if self._on != x.device:
            self.teacher.to(x.device)
            self._on = x.device
        with torch.no_grad():
            t_logits, _ = self.teacher(x.contiguous(memory_format=torch.channels_last)
                                       if self._nhwc else x)
        if dev.prefers_channels_last(model):
            x = x.contiguous(memory_format=torch.channels_last)
        logits, _ = model(x)
        cfg = ctx.cfg
        return self.task.distill_loss(logits, y, t_logits, cfg.distill_alpha,
                                      cfg.distill_temperature, cfg.label_smoothing)

    def __getattr__(self, name: str) -> Any:
        if name == "task":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.task, name)
