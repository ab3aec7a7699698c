"""Seq2seq and ViT attention speed on the CPU (1 torch thread, as the app runs on 2 cores): training
seconds (evaluations excluded) until the live date translator gets >= 95% of 1,000 held-out dates
exactly right (the page's own recipe, train/tasks/seq2seq.py LIVE: batch 64, lr 3e-3, cosine to a
tenth over the 300-step budget, through the one Trainer), what the full budget reaches, and the
ViT attention view's compute time per image."""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models.introspect.vit import vit_attention  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from karp_models.train.tasks.seq2seq import LIVE, live_trainer  # noqa: E402

TARGET = 0.95


def run(line) -> None:
    torch.set_num_threads(1)
    cfg = replace(LIVE, eval_every=20)                 # the page's, evaluated more often
    trainer = live_trainer(cfg, n_val=1000)
    evaluate, eval_s = trainer.task.evaluate, [0.0]

    def timed(*a, **k):                               # evaluation time is not training time
        t0 = time.perf_counter()
        out = evaluate(*a, **k)
        eval_s[0] += time.perf_counter() - t0
        return out

    trainer.task.evaluate = timed
    t_wall, reached = time.perf_counter(), None
    for rec in trainer.run():
        if reached is None and rec.val_accuracy is not None and rec.val_accuracy >= TARGET:
            reached = (rec, rec.elapsed_s - eval_s[0])
    wall = time.perf_counter() - t_wall
    final = rec
    if reached:
        r, t = reached
        line("seq2seq_time_to_95pct", t, "s",
             f"goal <= 60 s; training time, step {r.step}, {r.val_accuracy:.1%} of 1,000 "
             f"held-out dates exact")
    else:
        line("seq2seq_time_to_95pct", float("nan"), "s", f"not reached in {cfg.steps} steps")
    line("seq2seq_page_budget", final.elapsed_s - eval_s[0], "s",
         f"{cfg.steps} steps, {final.val_accuracy:.1%} exact; {wall:.0f} s wall with evaluations")

    vit = load_checkpoint(ROOT / "weights" / "vit-fashion-mnist.safetensors", "cpu").model
    x = torch.rand(1, 1, 28, 28)
    vit_attention(vit, x)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        vit_attention(vit, x)
        times.append((time.perf_counter() - t0) * 1e3)
    line("vit_attention_ms", statistics.median(times), "ms", "one image: 4 layers x 4 heads + rollout")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
