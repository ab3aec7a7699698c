"""The training loop: a generator of frozen metric records, under a step and/or time budget.

Knows nothing of the model family or the UI (karpathy/minGPT trainer.py: "nothing in this file
really has anything to do with GPT"): the Task (train/tasks) says what a batch is, what a step's
loss is and, when it needs more than one, which optimisers it steps. Weight-decay groups follow
minGPT's configure_optimizers; the one-cycle shape is PyTorch's OneCycleLR (Smith & Topin 2018),
the cosine one SGDR's (Loshchilov & Hutter 2017); several optimisers stepped by the task follow
Lightning's manual optimisation; mixed precision is PyTorch's AMP recipe. The schedules, the
optimisers and a step's update (StepContext) are in optim.py; this file re-exports them.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn as nn

from karp_models import device as dev
from karp_models.train.optim import (OPTIMIZERS, SCHEDULES, StepContext, lr_factor, make_optimizer,  # noqa: F401
                                     param_groups)


# --- configuration and records


@dataclass(frozen=True)
class TrainConfig:
    """How to train. At least one budget: steps, minutes, or both (whichever comes first).

    eval_every: steps between interval evaluations (0: only the final one), each on a fixed
    subset of eval_batches batches of batch_size (None: the whole split). The final evaluation
    always uses the whole split. amp only takes effect on CUDA. final_lr: the cosine schedule's
    last learning rate as a fraction of lr (0: down to zero). augment, shift and flip are passed
    to the task (images: each augmentation on or off). adv_eps > 0: adversarial training (Madry
    et al. 2018), which the image task does: each training batch is replaced by its PGD attack
    (random start, adv_steps steps of adv_step_size) within adv_eps on the [0, 1] pixel scale
    before the loss; evaluation stays on clean images.
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    schedule: str = "onecycle"
    warmup: float = 0.1
    final_lr: float = 0.0
    grad_clip: float = 1.0
    augment: bool = True
    shift: int | None = None          # images: pixels of random shift when augmenting (None: the task's)
    flip: bool = True                 # images: random horizontal flips when augmenting (data that allows them)
    adv_eps: float = 0.0              # images: > 0 trains on PGD adversarial batches of this L-inf radius
    adv_steps: int = 7                # ... with this many PGD steps
    adv_step_size: float | None = None  # ... of this size (None: 2.5 * adv_eps / adv_steps, Madry et al.)
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
        if not 0.0 <= self.final_lr <= 1.0:
            raise ValueError(f"final_lr is a fraction of lr in [0, 1], got {self.final_lr}")
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError("batch_size and lr must be positive")
        if self.eval_every < 0 or self.grad_clip < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError("eval_every and grad_clip must be >= 0, label_smoothing in [0, 1)")
        if self.shift is not None and self.shift < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {self.shift}")
        if not 0 <= self.adv_eps <= 1 or self.adv_steps < 1 or (
                self.adv_step_size is not None and self.adv_step_size <= 0):
            raise ValueError("adv_eps must be in [0, 1], adv_steps >= 1 and adv_step_size > 0")
        if not 0 <= self.distill_alpha <= 1 or self.distill_temperature < 0:
            raise ValueError("distill_alpha must be in [0, 1] and distill_temperature >= 0")


@dataclass(frozen=True)
class Record:
    """One point of the training curves: the one record of every task. val_* are set at
    evaluations; final marks the last.

    throughput: items (unit: 'samples' or 'tokens') per second of training over the last
    interval, evaluation time excluded; progress: fraction of the budget used, in [0, 1].
    scalars: the task's other named values, means since the last record (a GAN's two losses,
    D(x), D(G(z))), and at evaluations the evaluation's other numbers prefixed 'val_'.
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
    scalars: dict[str, float] = field(default_factory=dict, hash=False)


# --- trainer


class TrainerBusy(RuntimeError):
    """run() was called while another run() of the same trainer is still going."""


class Trainer:
    """Trains `model` on `task` under `cfg`; run() yields Records.

    Attributes read by callers: model, task, cfg, device, optimizers (name -> optimiser; the
    task's configure_optimizers, else one from make_optimizer under the name 'model'; every
    group follows the schedule of cfg.lr, times its 'lr_scale' if it has one), optimizer (the
    first), step, elapsed (seconds of training so far, across resumes), history
    (all Records yielded).
    """

    def __init__(self, model: nn.Module, task: Any, cfg: TrainConfig,
                 device: torch.device | str = "cpu"):
        self.cfg = cfg
        self.task = task
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if dev.prefers_channels_last(model):  # CNNs run faster in NHWC on oneDNN and cuDNN
            self.model.to(memory_format=torch.channels_last)
        configure = getattr(task, "configure_optimizers", None)
        self.optimizers: dict[str, torch.optim.Optimizer] = (
            dict(configure(self.model, cfg, self.device)) if configure is not None
            else {"model": make_optimizer(self.model, cfg, self.device)})
        self.optimizer = next(iter(self.optimizers.values()))
        self.amp = cfg.amp and dev.amp_dtype(self.device) is not None
        self.scaler = (torch.amp.GradScaler("cuda") if cfg.amp and dev.needs_grad_scaler(self.device)
                       else None)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # batches and augmentation
        self.step = 0
        self.items = 0  # samples or tokens seen
        self.elapsed = 0.0
        self.history: list[Record] = []
        self._global_rng: dict[str, torch.Tensor] | None = None  # torch's RNG, while paused
        self._busy = threading.Lock()  # one run() at a time: two loops must never step one model

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

    def lr_factor(self) -> float:
        cfg = self.cfg
        return lr_factor(cfg.schedule, self.progress(), cfg.warmup, cfg.final_lr)

    # --- loop

    def _train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One step: the task's training_step under autocast, then (one optimiser) its step."""
        ctx.stepped.clear()
        with dev.autocast(self.device, enabled=self.amp):
            out = self.task.training_step(self.model, batch, ctx)
        losses = dict(out) if isinstance(out, Mapping) else {"loss": out}
        if not ctx.stepped:
            if len(self.optimizers) != 1:
                raise RuntimeError(f"{type(self.task).__name__} has several optimizers: its "
                                   f"training_step must step them (ctx.step)")
            ctx.step(next(iter(self.optimizers)), losses["loss"])
        if self.scaler is not None:
            self.scaler.update()
        return {k: v.detach().float() for k, v in losses.items()}

    def run(self, stop: threading.Event | None = None, log_every: int = 10,
            quick_stop: bool = False, wait_s: float = 30.0) -> Iterator[Record]:
        """Train until the budget is used up or `stop` is set (checked before every step).

        Yields a Record every log_every steps, one with validation every cfg.eval_every steps,
        and a final one with validation on the whole split (quick_stop: on the interval subset
        when `stop` ended the run early, so a Stop button answers in a fraction of a second).
        Torch's global RNG (dropout) is the run's own: seeded with cfg.seed on a fresh run, put
        aside while the generator is paused at a yield and reinstalled when it resumes, so what
        the consumer does between records (sampling text, building a model) does not change it.

        A second run() of the same trainer while one is still going (a page rerun that starts
        the loop again before the old one has stopped) waits up to wait_s seconds for it, then
        raises TrainerBusy.
        """
        if not self._busy.acquire(timeout=wait_s):
            raise TrainerBusy("this trainer is already training in another loop")
        try:
            yield from self._run(stop, log_every, quick_stop)
        finally:
            self._busy.release()

    def _run(self, stop: threading.Event | None, log_every: int,
             quick_stop: bool) -> Iterator[Record]:
        cfg, model, task, device = self.cfg, self.model, self.task, self.device
        self._enter_rng()
        B = cfg.batch_size
        log_every = max(1, int(log_every))
        items_per_step = task.items_per_batch(B)
        ctx = StepContext(cfg, self.optimizers, self.scaler, device)
        model.train()
        sums: dict[str, torch.Tensor] = {}  # named losses summed on the device since the last record
        n_sum = 0
        t_train = 0.0  # seconds of training (no evaluation) since the last record
        items_since = 0
        lr = cfg.lr * self.lr_factor()
        clock = time.perf_counter()

        def take_means() -> dict[str, float]:
            """Mean of each named value since the last record (the one sync with the device)."""
            nonlocal sums, n_sum
            if not n_sum:
                last = self.history[-1] if self.history else None
                return {"loss": last.train_loss if last else float("nan")}
            names = list(sums)
            values = (torch.stack([sums[k] for k in names]) / n_sum).tolist()
            sums, n_sum = {}, 0
            means = dict(zip(names, values))
            if not math.isfinite(means["loss"]):
                raise FloatingPointError(
                    f"training loss became {means['loss']} at step {self.step}: lower the lr "
                    f"(now {cfg.lr:g}) or keep grad_clip on")
            return means

        def record(means: dict[str, float], val: dict | None, final: bool = False) -> Record:
            nonlocal t_train, items_since
            scalars = {k: v for k, v in means.items() if k != "loss"}
            if val:
                scalars.update({f"val_{k}": v for k, v in val.items()
                                if k not in ("loss", "accuracy")})
            rec = Record(step=self.step, epoch=self.items / task.items_per_epoch,
                         train_loss=means["loss"], lr=lr,
                         throughput=items_since / t_train if t_train > 0 else 0.0,
                         unit=task.unit, elapsed_s=self.elapsed,
                         val_loss=val["loss"] if val else None,
                         val_accuracy=val.get("accuracy") if val else None,
                         final=final, progress=self.progress(), scalars=scalars)
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
            factor = self.lr_factor()
            lr = cfg.lr * factor
            for opt in self.optimizers.values():
                for g in opt.param_groups:  # a group may scale the run's lr (a task's 'lr_scale')
                    g["lr"] = lr * g.get("lr_scale", 1.0)
            batch = task.batch("train", B, self.generator, device, augment=cfg.augment)
            for k, v in self._train_step(batch, ctx).items():
                sums[k] = sums[k] + v if k in sums else v
            n_sum += 1
            self.step += 1
            self.items += items_per_step
            items_since += items_per_step
            tick()
            if self.done():
                break  # the final record below covers this step
            eval_due = cfg.eval_every > 0 and self.step % cfg.eval_every == 0
            if eval_due or self.step % log_every == 0:
                means = take_means()
                tick()  # the sync above ends the device's queued work: count it as training
                val = None
                if eval_due:
                    val = task.evaluate(model, device, max_batches=cfg.eval_batches, batch_size=B)
                    self.elapsed += time.perf_counter() - clock  # evaluation counts against the budget
                self._leave_rng()
                yield record(means, val)
                self._enter_rng()
                clock = time.perf_counter()  # time spent by the consumer is not training time
        means = take_means()
        tick()
        if quick_stop and stop is not None and stop.is_set() and not self.done():
            val = task.evaluate(model, device, max_batches=cfg.eval_batches or 4, batch_size=B)
        else:
            val = task.evaluate(model, device)
        self.elapsed += time.perf_counter() - clock
        self._leave_rng()
        yield record(means, val, final=True)

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
        """Everything needed to continue exactly: model, optimisers, counters, RNGs, history."""
        rng = {"generator": self.generator.get_state()}
        if self._global_rng is not None:  # None: not run yet, run() will seed it
            rng.update({k: v.clone() for k, v in self._global_rng.items()})
        task_state = self.task.state_dict() if hasattr(self.task, "state_dict") else {}
        opts = {k: o.state_dict() for k, o in self.optimizers.items()}
        return {
            "model": self.model.state_dict(),
            # one optimiser keeps the 'karp-1' layout of earlier runs; several go by name
            **({"optimizer": opts["model"]} if list(opts) == ["model"] else {"optimizers": opts}),
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
        opts = state.get("optimizers") or {"model": state["optimizer"]}
        if set(opts) != set(self.optimizers):
            raise ValueError(f"the saved run has optimizers {sorted(opts)}, this trainer "
                             f"{sorted(self.optimizers)}")
        for k, o in self.optimizers.items():
            o.load_state_dict(opts[k])
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
