"""Fine-tuning a FineTune model (models/finetune.py) on an ImageData: image classification whose
run starts from the backbone's pretrained weights, with discriminative learning rates.

'head': the backbone is frozen by the model (requires_grad False), so the default optimiser
takes the head alone; 'whole': every layer trains, the pretrained ones at backbone_lr_scale
times the learning rate (ULMFiT's discriminative rates; Lightning's per-group lr via
configure_optimizers); 'scratch': random weights, one learning rate.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from karp_models.train.finetune import backbone_state
from karp_models.train.tasks.images import ImageClassification
from karp_models.train.trainer import make_optimizer, param_groups

EVAL_PIXELS = 1 << 21    # evaluation batches hold about this many input values (28x28: 256, 224x224x3: 13)


class FineTuning(ImageClassification):
    """ImageClassification of a FineTune model; the held-out split is the data's test split (a
    person's own classes: their validation images)."""

    def setup(self, model: nn.Module) -> None:
        """A fresh run's start (runs.build_run; not on resume): the backbone's pretrained weights,
        except in 'scratch' mode. Raises WeightsUnavailable with what to do."""
        if model.config.mode != "scratch":
            model.load_backbone(backbone_state(model.config))

    def configure_optimizers(self, model: nn.Module, cfg: Any,
                             device: torch.device) -> dict[str, torch.optim.Optimizer]:
        """One optimiser (named 'model', as the default's) whose groups split decay/no-decay and
        backbone/head; in 'whole' mode the backbone's groups carry lr_scale = backbone_lr_scale."""
        scale = model.config.backbone_lr_scale if model.config.mode == "whole" else 1.0
        head = {id(p) for p in model.head.parameters()}
        groups = []
        for g in param_groups(model, cfg.weight_decay):              # trainable parameters only
            for in_head, lr_scale in ((False, scale), (True, 1.0)):
                ps = [p for p in g["params"] if (id(p) in head) == in_head]
                if ps:
                    groups.append({**g, "params": ps, "lr_scale": lr_scale})
        return {"model": make_optimizer(model, cfg, device, groups)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None, split: str = "test",
                 max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
        """As ImageClassification's, in batches sized by the input (224x224 photos: 13 at a time)."""
        C, H, W = self.splits["train"].cpu["x"].shape[1:]
        batch_size = batch_size or max(8, min(256, EVAL_PIXELS // (C * H * W)))
        return super().evaluate(model, device, split, max_batches, batch_size)

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "data_note": getattr(self.data, "note", "")}
