"""Tasks: what a batch is, a step's loss, evaluation and the live preview, per model family
(the Task protocol is in base.py; seq2seq.py, the date translator, is imported on its own)."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from karp_models.train.tasks.base import Distillation, Task, final_metrics, metric_names
from karp_models.train.tasks.images import ImageClassification
from karp_models.train.tasks.text import CharLM

__all__ = ["Task", "Distillation", "ImageClassification", "CharLM", "make_task", "final_metrics",
           "metric_names"]


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
