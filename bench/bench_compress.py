"""int8 against float32 for the shipped fast CNN (issue 22), measured in the same run: batch-1 CPU
latency (median), the time of the whole Fashion-MNIST test set, accuracy and agreement.

    python bench/bench_compress.py          # standalone; or bench/run.py --only compress

float32 runs with BatchNorm folded into the convs (as int8 folds it), so the ratio is int8's own;
int8 is torch.ao's static quantisation in FX graph mode, calibrated on 512 training images. The two
are timed call by call in turns, so a busy spell of a shared machine slows both alike.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import compress as C  # noqa: E402
from karp_models.introspect.evaluate import fused_for_inference  # noqa: E402
from karp_models import data  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from karp_models.train.tasks.base import fixed_subset  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "fast-fashion-mnist.safetensors"


def _best_s(fn, repeat: int = 3) -> float:
    """Best of `repeat` runs of fn(), in the thread's CPU time on one torch thread (as the latency),
    else in wall time."""
    clock = time.thread_time if C.cpu_clock() else time.perf_counter
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def run(line) -> None:
    ds = data.load("fashion-mnist")
    model = load_checkpoint(str(WEIGHTS)).model.eval()
    calib = ds.train_x[fixed_subset(len(ds.train_y), 512)].float() / 255
    t0 = time.perf_counter()
    q = C.quantize_static(model, calib)
    t_quant = time.perf_counter() - t0
    fused = fused_for_inference(model)
    x1 = ds.test_x[:1].float() / 255
    lat_q, lat_f = C.paired_latency_ms(q, fused, x1, warmup=20, repeat=200)   # call by call in turns
    y = ds.test_y.numpy()
    pf, pq = C.predictions(fused, ds.test_x), C.predictions(q, ds.test_x)
    set_f, set_q = float("inf"), float("inf")
    for _ in range(3):                                                  # in turns too: best of 3 each
        set_f = min(set_f, _best_s(lambda: C.predictions(fused, ds.test_x), repeat=1))
        set_q = min(set_q, _best_s(lambda: C.predictions(q, ds.test_x), repeat=1))
    sf, sq = C.model_size(model).dense, C.model_size(q).dense
    threads = torch.get_num_threads()
    line("compress_int8_latency_fast_cnn", lat_q, "ms",
         f"float32 {lat_f:.3f} ms, {lat_f / lat_q:.2f} x faster; batch 1, median of 200 in turns, threads: {threads}, "
         f"{'CPU time of the thread' if C.cpu_clock() else 'wall time'}")
    line("compress_int8_test_set_fast_cnn", set_q, "s",
         f"float32 {set_f:.2f} s, {set_f / set_q:.2f} x faster; {len(y):,} images, best of 3; float32 through Evaluate's "
         f"predict_probs (channels-last, BatchNorm folded), int8 in batches of 256")
    line("compress_int8_accuracy_fast_cnn", 100 * (pq == y).mean(), "%",
         f"float32 {100 * (pf == y).mean():.2f}%; same answer on {100 * (pq == pf).mean():.2f}% of the test set")
    line("compress_int8_size_fast_cnn", sq / 1e6, "MB",
         f"float32 {sf / 1e6:.2f} MB, {sf / sq:.2f} x smaller; quantised in {t_quant:.1f} s")


if __name__ == "__main__":
    from karp_models import device as dev
    from run import line

    print(f"# {dev.set_threads()} torch threads")
    run(line)
