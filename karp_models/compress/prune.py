"""Magnitude pruning with torch.nn.utils.prune (unstructured and by channel) and the short
fine-tune after it through the one Trainer (the package docstring has the papers)."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from karp_models.compress.base import KINDS, PRUNABLE

# ---------------------------------------------------------------------------- pruning


def prunable(model: nn.Module, kind: str) -> list[tuple[nn.Module, str]]:
    """(module, 'weight') pairs pruning acts on: every Conv2d and Linear weight (unstructured), or
    every Conv2d weight (structured, by output channel). Raises ValueError for an unknown kind or
    a model with nothing to prune."""
    if kind not in KINDS:
        raise ValueError(f"unknown pruning kind {kind!r}; choose from {KINDS}")
    types = PRUNABLE if kind == "unstructured" else (nn.Conv2d,)
    out = [(m, "weight") for m in model.modules() if isinstance(m, types)]
    if not out:
        raise ValueError(f"{type(model).__name__} has no {'conv or linear' if kind == 'unstructured' else 'conv'} "
                         f"layers to prune")
    return out


def prune_model(model: nn.Module, kind: str, amount: float) -> nn.Module:
    """A pruned deep copy of `model` (which is not changed), its masks still attached (so a
    fine-tune keeps the pruned weights at 0; `make_permanent` removes them).

    unstructured: the `amount` share of all conv and linear weights with the smallest |w|,
    chosen globally, set to 0 (round(amount * n) weights). structured: in every Conv2d, the
    round(amount * C_out) output filters with the smallest L1 norm set to 0, and the same
    channels of the BatchNorm2d right after it (its weight and bias), so a pruned channel outputs
    0 as if it were removed (alone, a zero filter comes out of BatchNorm as a constant map, which
    the next layer never saw: 30% of the fast CNN's channels pruned that way left 16% accuracy).
    Raises ValueError for an amount outside [0, 1) or an unknown kind."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount is a share of weights in [0, 1), got {amount}")
    m = copy.deepcopy(model)
    params = prunable(m, kind)
    if kind == "unstructured":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(amount))
    else:
        norms = dict(conv_norm_pairs(m))
        for mod, name in params:
            prune.ln_structured(mod, name, amount=float(amount), n=1, dim=0)
            bn = norms.get(mod)
            if bn is not None and bn.affine:                 # the channel outputs 0, as if removed
                keep = mod.weight_mask.flatten(1).any(1).to(bn.weight.dtype)    # (C_out,)
                prune.custom_from_mask(bn, "weight", keep)
                prune.custom_from_mask(bn, "bias", keep)
    return m


def conv_norm_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, the BatchNorm2d right after it) for each such pair of consecutive children (an
    nn.Sequential's, a ResNet block's conv1 -> bn1)."""
    out = []
    for mod in model.modules():
        kids = list(mod.children())
        out += [(a, b) for a, b in zip(kids, kids[1:])
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and a.out_channels == b.num_features]
    return out


def make_permanent(model: nn.Module) -> nn.Module:
    """Remove the pruning masks in place (the zeros become the parameters themselves); returns model."""
    for mod in model.modules():
        for name in [n[:-len("_orig")] for n, _p in mod.named_parameters(recurse=False) if n.endswith("_orig")]:
            prune.remove(mod, name)
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Share of conv and linear weights that are exactly 0."""
    ws = [m.weight.detach() for m in model.modules() if isinstance(m, PRUNABLE)]
    n = sum(w.numel() for w in ws)
    return sum(int((w == 0).sum()) for w in ws) / n if n else 0.0


def channel_sparsity(model: nn.Module) -> float:
    """Share of Conv2d output channels whose whole filter is 0."""
    zero = total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().flatten(1)                               # (C_out, C_in * k * k)
            zero += int((w == 0).all(1).sum())
            total += w.shape[0]
    return zero / total if total else 0.0

# ---------------------------------------------------------------------------- fine-tuning


class _QuickEval:
    """A task whose final evaluation is a fixed subset (the sweep measures accuracy itself):
    everything else is the task's own, as Distillation wraps a task."""

    def __init__(self, task: Any, max_batches: int = 1):
        self.task, self.max_batches = task, max_batches

    def evaluate(self, model: nn.Module, device: Any = None, split: str | None = None,
                 max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
        kw = {"split": split} if split else {}
        return self.task.evaluate(model, device, max_batches=self.max_batches, **kw)

    def __getattr__(self, name: str) -> Any:
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)


def finetune_config(steps: int, *, lr: float = 0.01, batch_size: int = 128, seed: int = 0) -> Any:
    """The fine-tune's TrainConfig: SGD (Nesterov momentum 0.9, weight decay 5e-4) at `lr` on a
    cosine schedule with no warm-up, label smoothing 0.1, no evaluations on the way."""
    from karp_models.train.trainer import TrainConfig

    return TrainConfig(steps=steps, batch_size=batch_size, optimizer="sgd", lr=lr, weight_decay=5e-4,
                       schedule="cosine", warmup=0.0, label_smoothing=0.1, eval_every=0, eval_batches=1,
                       seed=seed)


def finetune(model: nn.Module, data: Any, *, steps: int, task_kind: str = "image", lr: float = 0.01,
             batch_size: int = 128, seed: int = 0, device: torch.device | str = "cpu") -> nn.Module:
    """Train `model` in place for `steps` steps through the one Trainer and the model's Task
    (SGD with Nesterov momentum, cosine from `lr`, no warm-up, label smoothing 0.1, the task's
    augmentation: a short version of the fast CNN's recipe). Pruning masks stay attached, so
    pruned weights stay 0. Returns the model in eval mode, on `device`."""
    from karp_models.train.tasks import make_task
    from karp_models.train.trainer import Trainer

    if steps <= 0:
        return model.eval()
    task = _QuickEval(make_task(data, model, kind=task_kind))
    batch_size = min(batch_size, len(data.train_y))         # a person's own few images: a smaller batch
    cfg = finetune_config(steps, lr=lr, batch_size=batch_size, seed=seed)
    for _rec in Trainer(model, task, cfg, device).run(log_every=max(steps, 1)):
        pass
    return model.eval().to(memory_format=torch.contiguous_format)
