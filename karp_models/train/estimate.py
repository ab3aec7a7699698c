"""How long a run will take on this machine, measured rather than guessed: the run is built as
the job queue builds it (same model, preset, dataset, batch size, device and threads), a few of
its real training steps are timed, then one small evaluation and one live preview; `Timing`
scales those to the run's budget, counting what a job does besides training steps (interval
evaluations, the final evaluation on the whole held-out split, previews, building the run).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from karp_models.train import previews
from karp_models.train.runs import RunSpec, build_run
from karp_models.train.trainer import TrainConfig


@dataclass(frozen=True)
class Timing:
    """What one run of a (model, preset, dataset, batch size) costs here, in seconds."""

    params: int                # trainable and frozen parameters of the model
    step_s: float              # one training step
    eval_item_s: float         # evaluating one item (an image, or one character of text)
    preview_s: float           # one live preview (prediction grid, text sample)
    build_s: float             # loading the data and building the model and its optimiser
    items_per_batch: int       # items in one batch (batch size, times the context for text)
    eval_items: int            # items in the final evaluation: the whole held-out split
    preview_every: int         # steps between live previews
    steps_timed: int

    def seconds(self, cfg: TrainConfig) -> float:
        """The wall-clock time of a job training under `cfg` (its step budget), from Start to
        the end of its final evaluation."""
        steps = int(cfg.steps or 0)
        evals = (steps - 1) // cfg.eval_every if cfg.eval_every and steps else 0
        per_eval = (min(self.eval_items, cfg.eval_batches * self.items_per_batch)
                    if cfg.eval_batches else self.eval_items)
        previews_made = 1 + steps // max(1, self.preview_every)
        return (self.build_s + steps * self.step_s + previews_made * self.preview_s
                + (evals * per_eval + self.eval_items) * self.eval_item_s)


def _eval_items(data) -> int:
    """Items in the held-out split a final evaluation covers: test images (labelled or
    captioned), or characters."""
    for name in ("test_y", "test_x"):
        if hasattr(data, name):
            return int(len(getattr(data, name)))
    return int(len(data.val_ids))


def measure(spec: RunSpec, *, warmup: int = 2, min_steps: int = 3, max_steps: int = 40,
            min_seconds: float = 0.6, eval_items: int = 2048) -> Timing:
    """Time `spec` on this machine: build it, run `warmup` steps, then time steps until at least
    `min_steps` and `min_seconds` of training (at most `max_steps`); then an evaluation of about
    `eval_items` items and one preview. Takes about the build time plus 2 seconds for the
    models here on a 2-core CPU (the dataset's first reading aside). The spec's step budget, evaluations and previews are ignored.

    Raises what build_run raises (DatasetMissing, ValueError).
    """
    from karp_models import data

    cfg = dataclasses.replace(spec.config, steps=warmup + max_steps, minutes=None, eval_every=0)
    data.load(spec.dataset)                 # read once per process: a job finds it in memory
    t0 = time.perf_counter()
    prepared = build_run(dataclasses.replace(spec, config=cfg, resume_from=None))
    build_s = time.perf_counter() - t0
    trainer = prepared.trainer
    task, model, B = trainer.task, trainer.model, cfg.batch_size
    start = None
    run = trainer.run(log_every=1)
    for rec in run:                                  # one record per step: elapsed_s is training time
        if rec.step == warmup:
            start = rec
        elif start is not None and rec.step - start.step >= min_steps \
                and rec.elapsed_s - start.elapsed_s >= min_seconds:
            break
        if rec.step >= warmup + max_steps - 1:
            break
    run.close()
    end = trainer.history[-1]
    steps = end.step - start.step
    step_s = (end.elapsed_s - start.elapsed_s) / steps
    batches = max(2, -(-eval_items // task.items_per_batch(B)))
    task.evaluate(model, trainer.device, max_batches=1, batch_size=B)  # one-time set-up (a
    t0 = time.perf_counter()                                           # generator's judge) untimed
    task.evaluate(model, trainer.device, max_batches=batches, batch_size=B)
    eval_item_s = (time.perf_counter() - t0) / (batches * task.items_per_batch(B))
    t0 = time.perf_counter()
    previews.make(task, model, trainer.device, end.step)
    preview_s = time.perf_counter() - t0
    return Timing(params=sum(p.numel() for p in model.parameters()), step_s=step_s,
                  eval_item_s=eval_item_s, preview_s=preview_s, build_s=build_s,
                  items_per_batch=task.items_per_batch(B), eval_items=_eval_items(prepared.data),
                  preview_every=int(spec.preview_every or getattr(task, "preview_every", 50)),
                  steps_timed=steps)
