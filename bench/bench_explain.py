"""Explain page speed on the CPU for the shipped fast CNN (issue 6): Saliency and Grad-CAM
< 50 ms, Integrated Gradients with 50 steps < 300 ms, the whole sanity check (every CNN method,
every layer) < 10 s. One 28x28 Fashion-MNIST test image; the median of repeats (best for the
sanity check), after a warm-up, so a moment of contention on a shared machine counts less.

    python bench/bench_explain.py
"""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models.introspect import attribution as A  # noqa: E402
from karp_models.introspect.sanity import cascading_randomisation  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "fast-fashion-mnist.safetensors"


def _median_ms(fn: Callable[[], object], repeats: int = 15) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process): on a shared machine the CPU time shows
    what the code costs when the wall time also counts waiting for a core."""
    fn()                                                              # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def run(line) -> None:
    model = load_checkpoint(WEIGHTS, torch.device("cpu")).model
    ds = data.load("fashion-mnist")
    x = ds.test_x[:1].float() / 255
    with torch.no_grad():
        target = int(model(x)[0].argmax())
    for name, goal in (("Saliency", 50), ("Grad-CAM", 50)):
        ms, cpu = _median_ms(lambda: A.attribute(model, x, target, name))
        line(f"explain_{name.lower().replace('-', '')}_fast_cnn", ms, "ms", f"goal < {goal} ms; CPU {cpu:.0f} ms")
    ms, cpu = _median_ms(lambda: A.attribute(model, x, target, "Integrated Gradients", n_steps=50), repeats=7)
    line("explain_integrated_gradients_50_steps_fast_cnn", ms, "ms", f"goal < 300 ms; CPU {cpu:.0f} ms")
    methods = A.available(model)
    runs = []
    for _ in range(2):
        c0 = time.process_time()
        runs.append((cascading_randomisation(model, x, target, methods).seconds, time.process_time() - c0))
    wall, cpu = min(runs)
    line("explain_sanity_check_fast_cnn", wall, "s",
         f"goal < 10 s; CPU {cpu:.1f} s; {len(methods)} methods x every layer, best of 2")


if __name__ == "__main__":
    from karp_models import device as dev
    from run import line

    print(f"# {dev.set_threads()} torch threads")
    run(line)
