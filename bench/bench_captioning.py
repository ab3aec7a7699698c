"""Captioning speed on the CPU (1 torch thread, as the app runs on 2 cores): training seconds
(evaluations excluded) until Show, Attend and Tell's greedy captions of 500 held-out scenes reach
BLEU-4 >= 0.70 (the shipped recipe, through the one Trainer: batch 64, AdamW at 3e-3, one-cycle
over 3,000 steps), and the time to caption one scene greedily and with a beam of 3."""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import data  # noqa: E402
from karp_models.models import build_for  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402

TARGET = 0.70               # BLEU-4 of greedy captions on 500 fixed held-out scenes
RECIPE = TrainConfig(steps=3000, batch_size=64, lr=3e-3, eval_every=100, eval_batches=5)  # 5 x 100 scenes


def run(line) -> None:
    torch.set_num_threads(1)
    ds = data.load("scenes")
    torch.manual_seed(RECIPE.seed)
    model = build_for("caption-attention", ds)
    task = make_task(ds, model, kind="caption")
    evaluate, eval_s = task.evaluate, [0.0]

    def timed(*a, **k):                               # evaluation time is not training time
        t0 = time.perf_counter()
        out = evaluate(*a, **{**k, "batch_size": 100})
        eval_s[0] += time.perf_counter() - t0
        return out

    task.evaluate = timed
    trainer, stop, reached = Trainer(model, task, RECIPE), threading.Event(), None
    for rec in trainer.run(stop=stop, quick_stop=True):
        bleu = rec.scalars.get("val_bleu4")
        if reached is None and bleu is not None and bleu >= TARGET and not rec.final:
            reached = (rec, rec.elapsed_s - eval_s[0])
            stop.set()
    if reached:
        r, t = reached
        line("caption_attention_time_to_bleu4_0.70", t, "s",
             f"training time to step {r.step}: BLEU-4 {r.scalars['val_bleu4']:.3f}, "
             f"{r.val_accuracy:.1%} of 500 held-out scenes exactly right")
    else:
        line("caption_attention_time_to_bleu4_0.70", float("nan"), "s", f"not reached in {RECIPE.steps} steps")

    shipped = load_checkpoint(ROOT / "weights" / "caption-attention-scenes.safetensors").model
    x = ds.test_x[:1].float() / 255
    for name, fn in (("greedy", lambda: shipped.greedy(x)), ("beam3", lambda: shipped.beam_search(x, 3))):
        fn()
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        line(f"caption_{name}_ms", statistics.median(times), "ms", "one scene, the shipped attention model")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
