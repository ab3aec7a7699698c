"""Seq2seq and ViT attention speed on the CPU (1 torch thread, as the app runs on 2 cores): training
seconds until the live date translator gets >= 95% of 1,000 held-out dates exactly right (the
page's own settings: batch 64, Adam 3e-3, cosine over the 300-step budget), what the full budget
reaches, and the ViT attention view's compute time per image."""
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
from karp_models.seq2seq_train import LiveRun, TrainSettings  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402

TARGET = 0.95


def run(line) -> None:
    torch.set_num_threads(1)
    settings = replace(TrainSettings(), eval_every=20, n_val=1000)   # the page's, evaluated more often
    run_ = LiveRun(settings)
    t_wall, reached = time.perf_counter(), None
    for rec in run_.train():
        if reached is None and rec.val_exact is not None and rec.val_exact >= TARGET:
            reached = rec
    wall = time.perf_counter() - t_wall
    final = run_.records[-1]
    if reached:
        line("seq2seq_time_to_95pct", reached.elapsed_s, "s",
             f"goal <= 60 s; training time, step {reached.step}, {reached.val_exact:.1%} of 1,000 "
             f"held-out dates exact")
    else:
        line("seq2seq_time_to_95pct", float("nan"), "s", f"not reached in {settings.steps} steps")
    line("seq2seq_page_budget", final.elapsed_s, "s",
         f"{settings.steps} steps, {final.val_exact:.1%} exact; {wall:.0f} s wall with evaluations")

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
