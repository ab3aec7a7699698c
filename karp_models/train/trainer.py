"""The training loop: a generator of frozen metric records, under a step and/or time budget.

Knows nothing of the model family or the UI (karpathy/minGPT trainer.py: "nothing in this file
really has anything to do with GPT"); the task says what a batch is. Weight-decay groups follow
minGPT's configure_optimizers; the one-cycle shape is PyTorch's OneCycleLR (Smith & Topin 2018),
the cosine one SGDR's (Loshchilov & Hutter 2017); mixed precision is PyTorch's AMP recipe.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, ContextManager, Iterator

import torch
import torch.nn as nn

SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("adamw", "sgd")

# --- configuration and records


@dataclass(frozen=True)
class TrainConfig:
    """How to train. At least one budget: steps, minutes, or both (whichever comes first).

    eval_every: steps between interval evaluations (0: only the final one), each on a fixed
    subset of eval_batches batches of batch_size (None: the whole split). The final evaluation
    always uses the whole split. amp only takes effect on CUDA.
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    schedule: str = "onecycle"
    warmup: float = 0.1
    grad_clip: float = 1.0
    augment: bool = True
    shift: int | None = None          # images: pixels of random shift when augmenting (None: the task's)
    eval_every: int = 200
    eval_batches: int | None = 20
    seed: int = 0
    amp: bool = True
    label_smoothing: float = 0.0
    distill_alpha: float = 0.5        # with a teacher: weight of the teacher's term in the loss
    distill_temperature: float = 0.0  # 0: hard distillation (teacher's argmax), else soft (Hinton's T)

    def __post_init__(self) -> None:
        if self.steps is None and self.minutes is None:
            raise ValueError("TrainConfig needs a budget: steps=, minutes= or both")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.minutes is not None and self.minutes < 0:
            raise ValueError(f"minutes must be >= 0, got {self.minutes}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a fraction of the budget in [0, 1), got {self.warmup}")
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError("batch_size and lr must be positive")
        if self.eval_every < 0 or self.grad_clip < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError("eval_every and grad_clip must be >= 0, label_smoothing in [0, 1)")
        if self.shift is not None and self.shift < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {self.shift}")
        if not 0 <= self.distill_alpha <= 1 or self.distill_temperature < 0:
            raise ValueError("distill_alpha must be in [0, 1] and distill_temperature >= 0")


@dataclass(frozen=True)
class Record:
    """One point of the training curves. val_* are set at evaluations; final marks the last.

    throughput: items (unit: 'samples' or 'tokens') per second of training over the last
    interval, evaluation time excluded; progress: fraction of the budget used, in [0, 1].
    """

    step: int
    epoch: float
    train_loss: float
    lr: float
    throughput: float
    unit: str
    elapsed_s: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    final: bool = False
    progress: float = 0.0


# --- learning-rate schedule


def lr_factor(schedule: str, p: float, warmup: float = 0.1) -> float:
    """Multiplier of the peak lr at progress p in [0, 1] of the budget.

    onecycle: cosine rise from 1/25 to 1 over the warmup, cosine fall to 1/25e4 (OneCycleLR's
    defaults). cosine: linear warmup from 1/25, then cosine decay to 0. constant: linear warmup,
    then 1 (warmup=0 for a truly constant lr).
    """
    p = min(max(p, 0.0), 1.0)
    start = 1 / 25
    if schedule == "onecycle":
        if p < warmup:
            return start + (1 - start) * (1 - math.cos(math.pi * p / warmup)) / 2
        end = start / 1e4
        q = (p - warmup) / (1 - warmup)
        return end + (1 - end) * (1 + math.cos(math.pi * q)) / 2
    if p < warmup:
        return start + (1 - start) * p / warmup
    if schedule == "cosine":
        q = (p - warmup) / (1 - warmup)
        return (1 + math.cos(math.pi * q)) / 2
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")


# --- optimizer and precision


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices and conv kernels; not biases, norm gains, 1-D parameters or embeddings."""
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or id(p) in embedding else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), **extra)


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    try:
        from karp_models.device import amp_dtype
    except ImportError:  # the lead's device module is not there: the same policy, inline
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return amp_dtype(device)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --- trainer


class Trainer:
    """Trains `model` on `task` under `cfg`; run() yields Records.

    Attributes read by callers: model, task, cfg, device, optimizer, step, elapsed (seconds of
    training so far, across resumes), history (all Records yielded).

    teacher: an optional trained model of the same task whose outputs the model also learns from
    (knowledge distillation, cfg.distill_*); it is only run, in eval mode, never trained.
    """

    def __init__(self, model: nn.Module, task: Any, cfg: TrainConfig,
                 device: torch.device | str = "cpu", teacher: nn.Module | None = None):
        self.cfg = cfg
        self.task = task
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.teacher = teacher
        if teacher is not None:
            if not hasattr(task, "distill_loss"):
                raise ValueError(f"{type(task).__name__} has no distillation loss")
            teacher.to(self.device).eval().requires_grad_(False)
        # a CNN teacher runs in NHWC, as a CNN student does; decided once, not on every step
        self.teacher_nhwc = bool(getattr(teacher, "feature_layers", None))
        if self.teacher_nhwc:
            teacher.to(memory_format=torch.channels_last)
        # CNNs (models with spatial feature maps) run faster in NHWC on oneDNN and cuDNN
        self.channels_last = bool(getattr(model, "feature_layers", None))
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.amp_dtype = _amp_dtype(self.device) if cfg.amp else None
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # batches and augmentation
        self.step = 0
        self.items = 0  # samples or tokens seen
        self.elapsed = 0.0
        self.history: list[Record] = []
        self._global_rng: dict[str, torch.Tensor] | None = None  # torch's RNG, while paused

    # --- budget

    def progress(self) -> float:
        """Fraction of the budget used: max of the step and the time fractions."""
        cfg, p = self.cfg, 0.0
        if cfg.steps is not None:
            p = max(p, self.step / cfg.steps if cfg.steps else 1.0)
        if cfg.minutes is not None:
            p = max(p, self.elapsed / (cfg.minutes * 60) if cfg.minutes else 1.0)
        return min(p, 1.0)

    def done(self) -> bool:
        return self.progress() >= 1.0

    # --- loop

    def run(self, stop: threading.Event | None = None, log_every: int = 10) -> Iterator[Record]:
        """Train until the budget is used up or `stop` is set (checked before every step).

        Yields a Record every log_every steps, one with validation every cfg.eval_every steps,
        and a final one with validation on the whole split. Torch's global RNG (dropout) is
        the run's own: seeded with cfg.seed on a fresh run, put aside while the generator is
        paused at a yield and reinstalled when it resumes, so what the consumer does between
        records (sampling text, building a model) does not change the run.
        """
        cfg, model, opt, task, dev = self.cfg, self.model, self.optimizer, self.task, self.device
        self._enter_rng()
        params = [p for g in opt.param_groups for p in g["params"]]
        B, ls = cfg.batch_size, cfg.label_smoothing
        log_every = max(1, int(log_every))
        items_per_step = task.items_per_batch(B)
        model.train()
        loss_sum = torch.zeros((), device=dev)
        n_sum = 0  # steps in loss_sum
        t_train = 0.0  # seconds of training (no evaluation) since the last record
        items_since = 0
        lr = cfg.lr * lr_factor(cfg.schedule, self.progress(), cfg.warmup)
        clock = time.perf_counter()

        def take_loss() -> float:
            """Mean training loss since the last record (the one sync with the device)."""
            nonlocal loss_sum, n_sum
            if not n_sum:
                return self.history[-1].train_loss if self.history else float("nan")
            value = (loss_sum / n_sum).item()
            loss_sum, n_sum = torch.zeros((), device=dev), 0
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training loss became {value} at step {self.step}: lower the lr "
                    f"(now {cfg.lr:g}) or keep grad_clip on")
            return value

        def record(train_loss: float, val: dict | None, final: bool = False) -> Record:
            nonlocal t_train, items_since
            rec = Record(step=self.step, epoch=self.items / task.items_per_epoch,
                         train_loss=train_loss, lr=lr,
                         throughput=items_since / t_train if t_train > 0 else 0.0,
                         unit=task.unit, elapsed_s=self.elapsed,
                         val_loss=val["loss"] if val else None,
                         val_accuracy=val["accuracy"] if val else None,
                         final=final, progress=self.progress())
            t_train, items_since = 0.0, 0
            self.history.append(rec)
            return rec

        def tick() -> None:
            nonlocal clock, t_train
            now = time.perf_counter()
            t_train += now - clock
            self.elapsed += now - clock
            clock = now

        while not (stop is not None and stop.is_set()) and not self.done():
            lr = cfg.lr * lr_factor(cfg.schedule, self.progress(), cfg.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = task.batch("train", B, self.generator, dev, augment=cfg.augment)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(dev, self.amp_dtype):
                if self.teacher is not None:
                    with torch.no_grad():
                        t_x = x.contiguous(memory_format=torch.channels_last) if self.teacher_nhwc else x
                        t_logits, _ = self.teacher(t_x)
                    logits, _ = model(x)
                    loss = task.distill_loss(logits, y, t_logits, cfg.distill_alpha,
                                             cfg.distill_temperature, ls)
                elif ls:
                    logits, _ = model(x)
                    loss = task.loss(logits, y, ls)
                else:
                    _, loss = model(x, y)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if cfg.grad_clip:
                    self.scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                self.scaler.step(opt)
                self.scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
            opt.zero_grad(set_to_none=True)
            loss_sum += loss.detach().float()
            n_sum += 1
            self.step += 1
            self.items += items_per_step
            items_since += items_per_step
            tick()
            if self.done():
                break  # the final record below covers this step
            eval_due = cfg.eval_every > 0 and self.step % cfg.eval_every == 0
            if eval_due or self.step % log_every == 0:
                train_loss = take_loss()
                tick()  # the sync above ends the device's queued work: count it as training
                val = None
                if eval_due:
                    val = task.evaluate(model, dev, max_batches=cfg.eval_batches, batch_size=B)
                    now = time.perf_counter()
                    self.elapsed += now - clock  # evaluation counts against the time budget
                self._leave_rng()
                yield record(train_loss, val)
                self._enter_rng()
                clock = time.perf_counter()  # time spent by the consumer is not training time
        train_loss = take_loss()
        tick()
        val = task.evaluate(model, dev)
        self.elapsed += time.perf_counter() - clock
        self._leave_rng()
        yield record(train_loss, val, final=True)

    # --- torch's global RNG (dropout & co.): the run's own, kept aside while the run is paused

    def _enter_rng(self) -> None:
        """Install this run's RNG state (a fresh run: the seed), whatever ran in between."""
        if self._global_rng is None:
            torch.manual_seed(self.cfg.seed)
            return
        torch.set_rng_state(self._global_rng["torch"])
        if "cuda" in self._global_rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(self._global_rng["cuda"], self.device)

    def _leave_rng(self) -> None:
        self._global_rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            self._global_rng["cuda"] = torch.cuda.get_rng_state(self.device)

    # --- resume

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimizer, counters, RNGs, history."""
        rng = {"generator": self.generator.get_state()}
        if self._global_rng is not None:  # None: not run yet, run() will seed it
            rng.update({k: v.clone() for k, v in self._global_rng.items()})
        task_state = self.task.state_dict() if hasattr(self.task, "state_dict") else {}
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "items": self.items,
            "elapsed": self.elapsed,
            "rng": rng,
            "task": task_state,
            "history": [dataclasses.asdict(r) for r in self.history],
            "config": dataclasses.asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state_dict() (possibly from another process) to continue the same run."""
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.items = int(state.get("items", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        rng = state.get("rng", {})
        if "generator" in rng:
            self.generator.set_state(rng["generator"].cpu())
        self._global_rng = ({k: rng[k].cpu().clone() for k in ("torch", "cuda") if k in rng}
                            if "torch" in rng else None)  # installed by run(), not now
        if hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(state.get("task") or {})
        self.history = [Record(**r) for r in state.get("history", [])]
