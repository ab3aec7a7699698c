"""Evaluate page figures (issue 8): the full Fashion-MNIST test set through a shipped CNN, and the
projection of 10,000 penultimate-layer feature vectors (PCA, openTSNE t-SNE).

    python bench/bench_evaluate.py          # standalone; or bench/run.py --only evaluate
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models import device as dev  # noqa: E402
from karp_models.introspect.embeddings import pca_2d, penultimate_features, tsne_2d  # noqa: E402
from karp_models.introspect.evaluate import predict_probs  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "fast-fashion-mnist.safetensors"


def _timed(fn, repeat: int = 1):
    """(result, best wall seconds, CPU seconds of that best run) over `repeat` runs."""
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[1]:
            best = (out, wall, cpu)
    return best


def run(line) -> None:
    device = dev.pick_device()
    threads = torch.get_num_threads()
    ds = data.load("fashion-mnist")
    ck = load_checkpoint(str(WEIGHTS), device)
    x, y = ds.test_x, ds.test_y.numpy()
    predict_probs(ck.model, x[:256])                                   # warm-up
    probs, wall, cpu = _timed(lambda: predict_probs(ck.model, x), repeat=3)
    acc = (probs.argmax(1) == y).mean()
    line("evaluate_fast_cnn_test_set", wall, "s",
         f"goal < 5 s; {len(y):,} images, {len(y) / wall:,.0f} images/s, {acc:.2%} accuracy, "
         f"{threads} threads, CPU time {cpu:.1f} s")

    if threads > 1:          # one thread: the figure a busy machine (or a student laptop) sees
        torch.set_num_threads(1)
        _, wall1, _ = _timed(lambda: predict_probs(ck.model, x), repeat=3)
        torch.set_num_threads(threads)
        line("evaluate_fast_cnn_test_set_1_thread", wall1, "s", f"goal < 5 s; {len(y) / wall1:,.0f} images/s")

    feats, wall_f, _ = _timed(lambda: penultimate_features(ck.model, x))
    _, wall_p, _ = _timed(lambda: pca_2d(feats))
    line("projection_pca_10k", wall_f + wall_p, "s",
         f"features {wall_f:.1f} s + PCA {wall_p:.2f} s, {feats.shape[1]}-d")
    coords, wall_t, cpu_t = _timed(lambda: tsne_2d(feats, seed=0, n_jobs=threads))
    line("projection_tsne_10k", wall_f + wall_t, "s",
         f"goal < 60 s; features {wall_f:.1f} s + openTSNE {wall_t:.1f} s (FFT, 750 iterations, "
         f"n_jobs {threads}, CPU time {cpu_t:.1f} s)")


if __name__ == "__main__":
    from run import line

    dev.set_threads()
    print(f"# {dev.describe_device(dev.pick_device())}; torch {torch.__version__}")
    run(line)
