"""Autosave (issue 18): what one costs and how much work a crash can lose, on the CPU with 1 torch
thread as the app trains on 2 cores.

Cost: for each model the Train page offers (its recipe's batch size), a few real steps, then the
autosave the job queue makes, timed as the median of 5: the pause of the training (its state,
optimisers and records copied) and the writer thread's work (encoded as a safetensors file, the
quota check, written to a temporary file, fsync, os.replace, fsync of the folder); the pause's
share of training time at the default interval (30 s) and per step.

Lost work: a real job of the JobManager (the fast CNN on Fashion-MNIST, the page's recipe) trains
for LOSS_RUN_S seconds with the app's default interval; every autosave's start, end, step and
training seconds are logged. A kill at the worst moment (just before an autosave's rename) loses
everything since the previous autosave was written: the largest such gap, in wall seconds and in
seconds of training, is the measured worst case. The stated bound per model is the interval plus
one record's steps (the queue checks at each record, every 10 steps) plus one autosave's pause
and write.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models.train import runs, workspace  # noqa: E402
from karp_models.train.checkpoints import write_checkpoint  # noqa: E402
from karp_models.train.jobs import JobManager  # noqa: E402
from karp_models.train.runs import RunSpec, build_run  # noqa: E402
from karp_models.train.trainer import TrainConfig  # noqa: E402

INTERVAL_S = 30.0          # the app's default (KARP_AUTOSAVE_S)
LOG_EVERY = 10             # the queue checks at each record
LOSS_RUN_S = 100.0
# model, dataset, preset, batch size: the Train page's recipes (ui/train_form.RECIPES)
MODELS = [("fast", "fashion-mnist", None, 128), ("tinyvgg", "fashion-mnist", None, 64),
          ("resnet18", "digits", None, 64), ("vit", "fashion-mnist", "tiny", 128),
          ("lstm", "shakespeare", "small", 32), ("gpt", "shakespeare", "nano", 32)]


def autosave_cost(model: str, dataset: str, preset: str | None, batch: int, root: Path
                  ) -> tuple[float, float, float, int]:
    """(seconds a step, seconds the training waits for an autosave's snapshot, seconds its
    writer takes to encode and write it, bytes of the file), after 30 steps; medians of 5."""
    spec = RunSpec(model=model, dataset=dataset, preset=preset, device="cpu",
                   config=TrainConfig(steps=10**6, batch_size=batch, eval_every=0))
    prep = build_run(spec)
    stop = threading.Event()
    t0, n = time.perf_counter(), 0
    for rec in prep.trainer.run(stop=stop, log_every=LOG_EVERY):
        if rec.step >= 10 and n == 0:
            t0, n = time.perf_counter(), rec.step      # the first steps warm up
        if rec.step >= 40:
            stop.set()
    step_s = (time.perf_counter() - t0) / (prep.trainer.step - n)
    path = workspace.autosave_path("bench", f"{model}-{batch}", root)
    pause, write = [], []
    for _ in range(5):
        t = time.perf_counter()
        parts = runs.run_parts(spec, prep, {}, extra={"autosave": {"state": "running"},
                                                      "spec": runs.spec_meta(spec)}, copy=True)
        pause.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_checkpoint(path, *parts, before_write=lambda b: workspace.check_room(
            "bench", b, replacing=path, root=root))
        write.append(time.perf_counter() - t)
    return step_s, statistics.median(pause), statistics.median(write), path.stat().st_size


class Logged(JobManager):
    """The app's queue, logging each autosave written: (snapshot time, written time, step,
    seconds of training it holds)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.log: list[tuple[float, float, int, float]] = []
        write = self.autosaver.write

        def logged(job, parts, at, step, paused_s):
            write(job, parts, at, step, paused_s)
            self.log.append((at, time.time(), step, json.loads(parts[1]["_trainer"])["elapsed"]))

        self.autosaver.write = logged  # the autosaver's writer thread calls self.write


def worst_loss(root: Path) -> tuple[float, float, int, int, float]:
    """(worst wall seconds, worst training seconds, autosaves, steps, longest write) of a
    LOSS_RUN_S run."""
    m = Logged(runs_dir=root, set_threads=False, autosave_s=INTERVAL_S, grace_s=1e9)  # no tab
    try:
        spec = RunSpec(model="fast", dataset="fashion-mnist", device="cpu", preview_every=50,
                       config=TrainConfig(steps=10**6, batch_size=128, lr=4e-3))
        jid = m.submit("bench", spec)
        while m.status(jid).step == 0:                 # building: not training yet
            time.sleep(0.05)
        t_start = time.time()
        time.sleep(LOSS_RUN_S)
        m.stop(jid, wait=True)
    finally:
        m.shutdown()
    done = sorted(m.log[:-1], key=lambda r: r[1])      # the last one is the stop's own
    marks = [(t_start, t_start, 0, 0.0)] + done
    wall = max(b[1] - a[1] for a, b in zip(marks, marks[1:]))
    train = max(b[3] - a[3] for a, b in zip(marks, marks[1:]))
    return wall, train, len(done), m.log[-1][2], max(r[1] - r[0] for r in done)


def run(line) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for model, dataset, preset, batch in MODELS:
            try:
                step_s, pause_s, write_s, size = autosave_cost(model, dataset, preset, batch, root)
            except Exception as e:  # noqa: BLE001 - a dataset missing here: say so, go on
                line(f"autosave_{model}", float("nan"), "ms", f"not measured: {e}")
                continue
            bound = INTERVAL_S + LOG_EVERY * step_s + pause_s + write_s
            line(f"autosave_{model}", pause_s * 1e3, "ms paused",
                 f"{size / 2**20:.1f} MB file written in {write_s * 1e3:,.0f} ms by its thread; "
                 f"pause {pause_s / INTERVAL_S:.2%} of training every {INTERVAL_S:g} s = "
                 f"{pause_s * 1e3 * step_s / INTERVAL_S:.3f} ms a step of {step_s * 1e3:,.0f} ms; "
                 f"loss bound {bound:.1f} s")
        wall, train, n, steps, longest = worst_loss(root)
        line("autosave_worst_loss", wall, "s",
             f"measured: fast CNN on Fashion-MNIST, {LOSS_RUN_S:g} s, {n} autosaves every "
             f"{INTERVAL_S:g} s, {steps:,} steps; at most {train:.1f} s of training between two "
             f"written autosaves; longest write {longest:.2f} s")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
