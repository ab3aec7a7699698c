"""Generative models on the CPU (1 torch thread, as the app runs on 2 cores): training seconds from
scratch (evaluations excluded) until a DCGAN's and a VAE's samples on Fashion-MNIST come within a
stated Frechet distance of the test images, in the features of karp's fast CNN
(introspect/generative.py), through the one Trainer with the shipped recipes (RECIPES); and, as
the reference measured in the same run, the floor: the distance of as many real training images.

Every figure is on N_SAMPLES samples (FD estimates shrink as N grows: compare equal N only).
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import data  # noqa: E402
from karp_models.models import build_for  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.tasks.base import fixed_subset  # noqa: E402
from karp_models.train.tasks.generative import RECIPES  # noqa: E402
from karp_models.train.trainer import Trainer  # noqa: E402

N_SAMPLES = 2000      # samples per evaluation
EVERY = 100           # steps between evaluations
# (model, preset, task, Frechet distance to reach, step cap): about 1.5 x where the shipped runs
# ended (dcgan 34.0 after 1,500 steps, vae 24.5 after 2,500, on 10,000 samples; 2,000 read higher)
RUNS = [("dcgan", "small", "gan", 50.0, 2000), ("vae", "vae", "vae", 35.0, 2500)]


def time_to_fd(name: str, preset: str, kind: str, threshold: float, max_steps: int,
               ds) -> tuple[float | None, int, float]:
    """(training seconds to FD <= threshold or None, steps, last FD)."""
    torch.manual_seed(0)
    model = build_for(name, ds, preset=preset)
    task = make_task(ds, model, kind=kind)
    cfg = replace(RECIPES[kind], steps=max_steps, eval_every=0)
    trainer = Trainer(model, task, cfg, "cpu")
    eval_s, fd = 0.0, float("nan")
    for rec in trainer.run(log_every=EVERY):
        if rec.final:
            break
        t0 = time.perf_counter()                       # evaluation time is not training time
        fd = task.quality(model, torch.device("cpu"), N_SAMPLES, floor=False)["fd"]
        eval_s += time.perf_counter() - t0
        if fd <= threshold:
            return rec.elapsed_s - eval_s, rec.step, fd
    return None, trainer.step, fd


def run(line) -> None:
    torch.set_num_threads(1)
    ds = data.load("fashion-mnist")
    for name, preset, kind, threshold, cap in RUNS:
        t, steps, fd = time_to_fd(name, preset, kind, threshold, cap, ds)
        if t is None:
            line(f"{name}_time_to_fd_{threshold:g}", float("nan"), "s", f"not reached in {steps} steps (FD {fd:.1f})")
        else:
            line(f"{name}_time_to_fd_{threshold:g}", t, "s",
                 f"{preset} preset, step {steps}, FD {fd:.1f} on {N_SAMPLES:,} samples; training time")
    task = make_task(ds, build_for("vae", ds), kind="vae")
    t0 = time.perf_counter()
    ref = task._reference(torch.device("cpu"))
    feats, _ = task.judge(ds.train_x[fixed_subset(len(ds.train_x), N_SAMPLES)])
    floor = ref.distance(feats)
    line("generative_real_floor_fd", floor, "", f"{N_SAMPLES:,} real training images vs the test split; "
         f"{time.perf_counter() - t0:.1f} s with the test split's features")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
