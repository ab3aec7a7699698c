"""The Explain page's 8-method explanation for a class (issue 25, goal 4), without a server:

- one explanation of a Fashion-MNIST test image by the shipped fast CNN, as the page computed it
  before (Captum on the shared model, every method in turn: the reference), cold on the
  BatchNorm-folded channels_last copy (attr.inference_copy) through the shared cache, and warm
  (a cache hit: another student, same model and image); interleaved in one process, medians;
- the shared cache's hit rate when the load test's 60 students (bench_load.py: each explains the
  image it predicted, test image 0, then a random one) ask for their explanations, with the
  app's byte bound.

    python bench/bench_explain_cache.py
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models.introspect import attribution as A  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from karp_models.ui import compute as cp  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "fast-fashion-mnist.safetensors"


def timings(model: torch.nn.Module, xs: list[np.ndarray], repeats: int) -> dict[str, list[float]]:
    """Seconds per 8-method explanation: reference, cold (cache emptied first), warm; A, B, C, A..."""
    methods = tuple(A.available(model))
    out = {"reference": [], "cold": [], "warm": []}
    for r in range(repeats):
        x_np = xs[r % len(xs)]
        x = torch.from_numpy(x_np)
        target = int(model(x)[0].argmax())
        t0 = time.perf_counter()
        A.attribute_all(model, x, target, methods)
        out["reference"].append(time.perf_counter() - t0)
        cp.ATTRIBUTIONS.clear()
        t0 = time.perf_counter()
        cp.cached_attributions(model, x_np, target, methods)
        out["cold"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cp.cached_attributions(model, x_np, target, methods)
        out["warm"].append(time.perf_counter() - t0)
    return out


def replay_hit_rate(n: int = 60, n_test: int = 10_000) -> tuple[float, int, int]:
    """(hit rate, requests, bytes kept at the end) of the load test's explanations through a
    SharedLRU with the app's bound; the values are stand-ins of a 28x28 explanation's size."""
    one = 2 * 28 * 28 * 4 + 512                                       # attr + map + record
    lru = cp.cache.SharedLRU(cp.ATTRIBUTIONS.max_entries, max_bytes=cp.ATTRIBUTIONS.max_bytes,
                             sizeof=lambda v: one)
    requests = 0
    for i in range(n):                                                # students, as bench_load seeds them
        rng = random.Random(1000 + i)
        predicted = rng.randrange(n_test)                             # Predict's second image
        other = rng.randrange(n_test)                                 # the Explain page's random one
        for k in (predicted, 0, other):
            for m in range(8):
                lru.get_or_build(("fast", k, m), lambda: None)
                requests += 1
    return lru.hits / requests, requests, lru.nbytes


def run(line) -> None:
    torch.set_num_threads(int(os.environ.get("KARP_THREADS", "1")))
    model = load_checkpoint(WEIGHTS).model.eval()
    ds = data.load("fashion-mnist")
    xs = [ds.test_x[k:k + 1].float().numpy() for k in range(5)]
    t = timings(model, xs, repeats=int(os.environ.get("KARP_EXPLAIN_REPEATS", "9")))
    med = {k: statistics.median(v) for k, v in t.items()}
    line("explain_8_methods_reference", med["reference"] * 1e3, "ms",
         "fast CNN, one 28x28 image, Captum on the shared model method by method (the page before)")
    line("explain_8_methods_cold", med["cold"] * 1e3, "ms",
         f"{med['cold'] / med['reference']:.2f}x the reference, interleaved: a new image, through the "
         f"shared cache on the BatchNorm-folded channels_last copy")
    line("explain_8_methods_warm", med["warm"] * 1e3, "ms",
         f"{med['warm'] / med['reference']:.4f}x: another student, same weights and image (a cache hit)")
    rate, n, kept = replay_hit_rate()
    line("explain_cache_hit_rate_60_students", rate * 100, "%",
         f"{n} method requests of bench_load's 60 students (the image each predicted, test image 0, a "
         f"random one); {kept / 2**20:.1f} MB kept, bound {cp.ATTRIBUTIONS.max_bytes / 2**20:.0f} MB")


if __name__ == "__main__":
    from run import line

    run(line)
