"""Tasks: what a batch is, a step's loss, evaluation and the live preview, per model family
(the Task protocol is in base.py; seq2seq.py, the date translator, is imported on its own;
finetune.py, fine-tuning from a pretrained backbone, when a run asks for it; gan.py, the
two-optimiser GAN, and vae.py share generative.py; rl.py, REINFORCE and DQN, whose batches are
episodes they play themselves)."""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from karp_models.train.tasks.base import Distillation, Task, final_metrics, metric_names
from karp_models.train.tasks.gan import GANTask
from karp_models.train.tasks.captioning import ImageCaptioning
from karp_models.train.tasks.images import ImageClassification
from karp_models.train.tasks.text import CharLM
from karp_models.train.tasks.vae import VAETask

__all__ = ["Task", "Distillation", "ImageClassification", "CharLM", "ImageCaptioning", "GANTask", "VAETask",
           "TASKS", "make_task", "final_metrics", "metric_names"]


def _char_lm(data: Any, model: nn.Module, *, block_size: int | None = None, **_: Any) -> CharLM:
    if block_size is None:
        block_size = getattr(getattr(model, "config", None), "block_size", None)
    if block_size is None:
        raise ValueError("text needs a block_size: the model's config has none; pass block_size=")
    return CharLM(data, int(block_size))


def _image_classification(data: Any, model: nn.Module, *, augment: bool = True,
                          shift: int | None = None, flip: bool = True,
                          robust: dict | None = None, **_: Any) -> ImageClassification:
    return ImageClassification(data, augment=augment, pad=shift, flip=flip, robust=robust)


def _fine_tuning(data: Any, model: nn.Module, *, augment: bool = True, shift: int | None = None,
                 flip: bool = True, robust: dict | None = None, **_: Any) -> Task:
    from karp_models.train.tasks.finetune import FineTuning  # loads torchvision's model zoo

    return FineTuning(data, augment=augment, pad=shift, flip=flip, robust=robust)


def _gan(data: Any, model: nn.Module, **_: Any) -> GANTask:
    return GANTask(data, model)


def _vae(data: Any, model: nn.Module, **_: Any) -> VAETask:
    return VAETask(data, model)


def _captioning(data: Any, model: nn.Module, **_: Any) -> ImageCaptioning:
    return ImageCaptioning(data)


def _reinforce(env: Any, model: nn.Module, **_: Any) -> Task:
    from karp_models.train.tasks.rl import Reinforce  # Gymnasium only when an agent trains

    return Reinforce(env, model)


def _dqn(env: Any, model: nn.Module, **_: Any) -> Task:
    from karp_models.train.tasks.rl import DQN

    return DQN(env, model)


# task kind (models.registry's ModelSpec.task) -> the Task for a dataset and a model; a new family
# adds its builder here (keyword arguments: augment, shift, flip, robust, block_size; ignore what
# does not apply)
TASKS: dict[str, Callable[..., Task]] = {"image": _image_classification, "text": _char_lm,
                                         "finetune": _fine_tuning, "gan": _gan, "vae": _vae,
                                         "caption": _captioning, "reinforce": _reinforce, "dqn": _dqn}


def make_task(data: Any, model: nn.Module, augment: bool = True,
              block_size: int | None = None, shift: int | None = None,
              kind: str | None = None, flip: bool = True, robust: dict | None = None) -> Task:
    """The task of kind `kind` (a key of TASKS; the registry's ModelSpec.task) for a data set and
    a model. Without a kind: CharLM for text (it has a vocab), ImageClassification otherwise.

    block_size defaults to model.config.block_size; shift (images) to the task's own pad; flip
    (images) turns random flips off; robust (images): the PGD attack {"epsilon", "steps",
    "step_size", "items"} final evaluations also measure robust accuracy under.
    """
    if kind is not None:
        if kind not in TASKS:
            raise ValueError(f"no task {kind!r}; known: {', '.join(TASKS)}")
        return TASKS[kind](data, model, augment=augment, shift=shift, block_size=block_size,
                           flip=flip, robust=robust)
    if hasattr(data, "vocab"):
        if block_size is None:
            block_size = getattr(getattr(model, "config", None), "block_size", None)
        if block_size is None:
            raise ValueError("text needs a block_size: the model's config has none; "
                             "pass block_size=")
        return CharLM(data, int(block_size))
    return ImageClassification(data, augment=augment, pad=shift, flip=flip, robust=robust)
