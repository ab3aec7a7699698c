"""Karpathy's sanity checks from "A Recipe for Training Neural Networks" (2019), measured on a real
run: the loss at initialisation against ln(C), overfitting one batch, and per layer the gradient
norm and the update-to-weight ratio over a few steps (he suggests about 1e-3; cs231n's "ratio of
weights:updates"). Everything trains through the one Trainer: `OneBatch` and `QuickEval` wrap any
task so that its batches or its evaluation are the ones a check needs.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from karp_models.train.trainer import TrainConfig, Trainer

Progress = Callable[[float], None]
GOOD_RATIO = 1e-3          # Karpathy / cs231n: updates about a thousandth of the weights


def n_outputs(data: Any) -> int | None:
    """C, the number of classes (or characters) a cross-entropy loss chooses between; None when the
    task is not a classification (a GAN, a VAE)."""
    for name in ("classes", "vocab", "itos"):
        v = getattr(data, name, None)
        if v is not None:
            return len(v)
    return None


def expected_initial_loss(n_classes: int) -> float:
    """ln(C): the cross-entropy of a uniform guess over C classes, what an untrained network with small
    random last-layer weights should start at (2.303 for 10 classes). Raises ValueError for C < 1."""
    if n_classes < 1:
        raise ValueError(f"need at least one class, got {n_classes}")
    return math.log(n_classes)

# ---------------------------------------------------------------------------- task wrappers


class _Wrapped:
    """Delegates every attribute to the wrapped task."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)


class QuickEval(_Wrapped):
    """`task` whose evaluation reads at most `max_batches` batches (a check needs the training loss,
    not the whole test split)."""

    def __init__(self, task: Any, max_batches: int = 2) -> None:
        super().__init__(task)
        self.max_batches = max_batches

    def evaluate(self, model: nn.Module, device: Any = None, split: str | None = None,
                 max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
        return self.task.evaluate(model, device, split=split or self.task.eval_split,
                                  max_batches=self.max_batches, batch_size=batch_size or 256)


class OneBatch(QuickEval):
    """`task` whose every training batch is the same one (drawn once with `seed`): Karpathy's
    "overfit one batch". Its evaluation is the training loss on that batch."""

    def __init__(self, task: Any, batch_size: int, device: Any, seed: int = 0) -> None:
        super().__init__(task, max_batches=1)
        self.fixed = task.batch("train", batch_size, torch.Generator().manual_seed(seed), device,
                                augment=False)

    def batch(self, split: str, batch_size: int, generator: torch.Generator, device: Any = None,
              augment: bool = True) -> Any:
        return self.fixed

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: Any = None, split: str | None = None,
                 max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
        was = model.training
        model.eval()
        try:
            return {"loss": float(model(*self.fixed)[1])}
        finally:
            model.train(was)

# ---------------------------------------------------------------------------- gradients and updates


@dataclass
class LayerStats:
    """Per step and per parameter tensor (weights of more than one dimension, by name): the gradient's
    L2 norm and the update-to-weight ratio ||w_after - w_before|| / ||w_before||."""
    names: list[str]
    grad_norm: list[list[float]] = field(default_factory=list)      # (steps, layers)
    update_ratio: list[list[float]] = field(default_factory=list)   # (steps, layers)


@contextmanager
def watch_updates(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> Iterator[LayerStats]:
    """While the block runs, record each optimiser step's gradient norm and update/weight ratio of every
    weight matrix or kernel of `model` (optimiser step hooks: the gradient as the optimiser sees it,
    after clipping). The hooks are removed on exit."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
    stats = LayerStats([n for n, _ in named])
    before: dict[str, torch.Tensor] = {}
    lock = threading.Lock()

    def pre(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with lock:
            before.clear()
            before.update({n: p.detach().clone() for n, p in named})
            stats.grad_norm.append([float(p.grad.norm()) if p.grad is not None else 0.0 for _, p in named])

    def post(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with lock:
            stats.update_ratio.append([float((p.detach() - before[n]).norm() / (before[n].norm() + 1e-12))
                                       for n, p in named])

    handles = []
    for opt in optimizers.values():
        handles += [opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)]
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()

# ---------------------------------------------------------------------------- the checks


@torch.no_grad()
def initial_loss(model: nn.Module, task: Any, *, batch_size: int = 256, seed: int = 0,
                 device: Any = "cpu") -> float:
    """The loss of `model` as it is (untrained: at initialisation) on one training batch, in nats."""
    was = model.training
    model.eval()
    try:
        x, y = task.batch("train", batch_size, torch.Generator().manual_seed(seed), device, augment=False)
        _, loss = model(x, y)
        return float(loss)
    finally:
        model.train(was)


@dataclass(frozen=True)
class Recipe:
    """What the checks measured. initial: loss at initialisation (nats); expected: ln C; losses: the
    training loss at every step of the one-batch overfit; stats: per layer gradient norms and update
    ratios over those steps."""
    initial: float
    expected: float | None
    losses: list[float]
    stats: LayerStats

    @property
    def initial_ok(self) -> bool | None:
        """Within 25% of ln C (None without C)."""
        return None if self.expected is None else abs(self.initial - self.expected) <= 0.25 * self.expected

    @property
    def overfits(self) -> bool:
        """The one-batch loss fell to a tenth of where it started."""
        return bool(self.losses) and self.losses[-1] <= 0.1 * self.losses[0]

    def median_ratios(self) -> np.ndarray:
        """(layers,) each layer's median update/weight ratio over the steps."""
        return np.median(np.asarray(self.stats.update_ratio), axis=0)


def run_losses(trainer: Trainer, progress: Progress | None = None, stop: threading.Event | None = None) -> list[float]:
    """Train `trainer` to its budget, recording the training loss every step (log_every 1); a loss
    that became infinite or NaN ends the list with inf."""
    losses: list[float] = []
    try:
        for rec in trainer.run(stop=stop, log_every=1):      # one record per step, the last one final
            losses.append(rec.train_loss)
            if progress:
                progress(rec.progress)
    except FloatingPointError:
        losses.append(math.inf)
    return losses


def recipe_checks(model: nn.Module, task: Any, data: Any, *, steps: int = 60, batch_size: int = 16,
                  lr: float = 3e-3, device: Any = "cpu", seed: int = 0,
                  progress: Progress | None = None) -> Recipe:
    """Karpathy's checks on `model` (freshly initialised; it is trained by this call: pass a copy) with
    `task`: the initial loss on a batch, then `steps` Adam steps on one batch of `batch_size` (no
    augmentation, no weight decay, no clipping, constant lr) with per-layer gradient and update ratios."""
    C = n_outputs(data)
    init = initial_loss(model, task, device=device, seed=seed)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, schedule="constant", weight_decay=0.0,
                      grad_clip=0.0, augment=False, eval_every=0, seed=seed, amp=False)
    trainer = Trainer(model, OneBatch(task, batch_size, device, seed), cfg, device)
    with watch_updates(trainer.model, trainer.optimizers) as stats:
        losses = run_losses(trainer, progress)
    return Recipe(init, expected_initial_loss(C) if C else None, losses, stats)


def loss_goes_down(losses: list[float], *, by: float = 0.1) -> bool:
    """Did a short run learn: finite throughout, and the mean of its last fifth at least `by` (10%)
    below its first loss."""
    if not losses or not all(math.isfinite(v) for v in losses):
        return False
    tail = losses[-max(1, len(losses) // 5):]
    return float(np.mean(tail)) <= (1 - by) * losses[0]

# ---------------------------------------------------------------------------- lessons' short runs


def _quick_spec(model: str, dataset: str, cfg: TrainConfig):
    from karp_models.train.runs import RunSpec
    return RunSpec(model, dataset, cfg, device="cpu")


def fresh_initial_loss(model: str = "fast", dataset: str = "fashion-mnist", seed: int = 0) -> tuple[float, float | None]:
    """(the loss of a freshly initialised registry `model` on a training batch of `dataset`, ln C)."""
    from karp_models.train.runs import build_run
    p = build_run(_quick_spec(model, dataset, TrainConfig(steps=1, seed=seed)))
    C = n_outputs(p.data)
    return initial_loss(p.trainer.model, p.trainer.task, seed=seed), (expected_initial_loss(C) if C else None)


def lr_trial(lr: float, steps: int = 30, *, model: str = "classic", dataset: str = "fashion-mnist",
             batch_size: int = 32, seed: int = 0, progress: Progress | None = None) -> list[float]:
    """A short real run with plain SGD at learning rate `lr` (constant, no clipping, no augmentation):
    the training loss at every step (inf once it blew up). A few dozen steps take seconds on a CPU."""
    from karp_models.train.runs import build_run
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, optimizer="sgd", schedule="constant",
                      weight_decay=0.0, grad_clip=0.0, augment=False, eval_every=0, seed=seed, amp=False)
    p = build_run(_quick_spec(model, dataset, cfg))
    p.trainer.task = QuickEval(p.trainer.task, max_batches=1)
    return run_losses(p.trainer, progress)


def checks_for(model: str, dataset: str, *, preset: str | None = None, lr: float = 3e-3, steps: int = 60,
               batch_size: int = 16, seed: int = 0, progress: Progress | None = None) -> Recipe:
    """`recipe_checks` on a fresh registry `model` (with `preset`) for `dataset`, on the CPU: what a run of
    these settings starts from. Raises ValueError for a model that is not a classifier or language model
    (a GAN, a VAE, a captioner: no ln C to compare with), and what build_run raises."""
    from karp_models.models import REGISTRY
    from karp_models.train.runs import RunSpec, build_run
    if model not in REGISTRY or REGISTRY[model].task not in ("image", "text"):
        raise ValueError(f"the recipe checks are for image classifiers and character models, not {model!r}")
    p = build_run(RunSpec(model, dataset, TrainConfig(steps=1, seed=seed, augment=False), preset=preset, device="cpu"))
    return recipe_checks(p.trainer.model, p.trainer.task, p.data, steps=steps, batch_size=batch_size, lr=lr,
                         seed=seed, progress=progress)
