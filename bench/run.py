"""Speed figures on this machine, one line each: `name: value unit (goal ...)`.

    python bench/run.py            # all figures (a few minutes on a 2-core CPU)
    python bench/run.py --only matmul,throughput

Measured in this run; nothing is copied from elsewhere. Goals come from issues 3 and 25.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models import device as dev  # noqa: E402
from karp_models.models import build_for  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402


def line(name: str, value: float, unit: str, goal: str = "") -> None:
    print(f"{name}: {value:,.3g} {unit}" + (f" ({goal})" if goal else ""), flush=True)


def median_ms(fn: Callable[[], object], repeat: int = 9) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# --- machine


def matmul_rate(n: int = 1024, seconds: float = 3.0, windows: int = 6) -> float:
    """float32 matrix-multiply rate in FLOP/s: the best of several short windows, so a moment
    of contention from another process does not lower the reference."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(windows):
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / windows:
            a @ b
            k += 1
        best = max(best, 2 * n**3 * k / (time.perf_counter() - t0))
    return best


# --- time to accuracy


def time_to(model_name: str, dataset: str, cfg: TrainConfig, *, preset: str | None = None,
            target_loss: float | None = None, overrides: dict | None = None) -> tuple[float, dict]:
    """Train from scratch; wall time (including the final evaluation) and its full-split metrics.

    With target_loss, training stops at the first interval evaluation at or below it.
    """
    device = dev.pick_device()
    ds = data.load(dataset)
    torch.manual_seed(cfg.seed)
    model = build_for(model_name, ds, preset=preset, **(overrides or {})).to(device)
    task = make_task(ds, model, augment=cfg.augment, shift=cfg.shift)
    stop = threading.Event()
    t0 = time.perf_counter()
    for rec in Trainer(model, task, cfg, device).run(stop=stop):
        if target_loss is not None and rec.val_loss is not None and rec.val_loss <= target_loss:
            stop.set()
    # the final record is the trainer's evaluation on the whole held-out split
    return time.perf_counter() - t0, {"loss": rec.val_loss, "accuracy": rec.val_accuracy}


def cnn_section(seeds: tuple[int, ...] = (0, 1, 2), ref_seeds: tuple[int, ...] = (1,),
                target: float = 0.91) -> None:
    """karp's fast CNN against pytorch/examples' MNIST recipe (bench/reference_mnist.py), both on
    Fashion-MNIST to `target` test accuracy, interleaved in this process: karp's seeds with the
    reference's between them. Each figure counts its evaluation passes."""
    import reference_mnist

    ds = data.load("fashion-mnist")
    runs, refs = [], []
    order = [("karp", s) for s in seeds]
    for i, s in enumerate(ref_seeds):                 # karp, ref, karp, ref, ... karp
        order.insert(2 * i + 1, ("ref", s))
    for who, s in order:
        if who == "karp":
            runs.append(time_to("fast", "fashion-mnist", TrainConfig(**FAST_CNN_RECIPE, seed=s),
                                preset=FAST_CNN_PRESET))
        else:
            refs.append(reference_mnist.time_to(ds, target, epochs=4, seed=s))
    reached = [t for t, m in runs if m["accuracy"] >= target]
    times = sorted(t if m["accuracy"] >= target else math.inf for t, m in runs)
    t, accs = times[len(times) // 2], sorted(m["accuracy"] for _, m in runs)
    line("fast_cnn_time_to_91pct", t, "s",
         f"goal <= 15 s; median of {len(runs)} seeds, {min(t for t, _ in runs):.1f}-"
         f"{max(t for t, _ in runs):.1f} s; {len(reached)}/{len(runs)} reached {target:.0%} "
         f"(test accuracy {accs[0]:.2%}-{accs[-1]:.2%})")
    # a seed that never reached the target counts with its whole run (so the ratio is a floor)
    ref_times = sorted(r.time_to_target or r.seconds[-1] for r in refs)
    t_ref = ref_times[len(ref_times) // 2]
    floor = "" if all(r.time_to_target for r in refs) else "at least; "
    detail = "; ".join(f"seed {s}: " + ", ".join(f"{a:.2%} at {sec:.0f} s" for a, sec in
                                                  zip(r.accuracies, r.seconds))
                       for s, r in zip(ref_seeds, refs))
    line("pytorch_examples_mnist_time_to_91pct", t_ref, "s",
         f"pytorch/examples mnist/main.py's Net and recipe on Fashion-MNIST, this run, "
         f"{len(refs)} seed(s), tested after each epoch: {detail}")
    line("fast_cnn_speedup_vs_pytorch_examples", t_ref / t, "x", f"{floor}goal >= 9")


def gpt_versus_nanogpt(seeds: tuple[int, ...] = (0, 1, 2), target: float | None = None) -> None:
    """karp's GPT recipe and nanoGPT's CPU recipe (bench/nanogpt_ref.py) to the same validation
    loss on the same text and split, interleaved seed by seed (karp, nanoGPT, karp, ...).

    karp's recipe is a fixed budget: its time is the whole run, the final full-split evaluation
    included, and a seed reaches the target if that full-split loss is at or below it. nanoGPT is
    checked every 50 iterations (from half way on) on a fixed validation subset and timed to the
    first check at or below the target, the checks not counted: both in its favour."""
    from nanogpt_ref import RefRecipe, RefRun, time_to_loss

    target = GPT_TARGET if target is None else target
    ds = data.load("shakespeare")
    cfg = TrainConfig(**GPT_RECIPE)
    task = make_task(ds, build_for("gpt", ds, preset=GPT_PRESET, **GPT_MODEL))
    train_ids = torch.as_tensor(ds.train_ids, dtype=torch.int64)
    recipe = RefRecipe(max_iters=NANOGPT_MAX_ITERS, lr_decay_iters=NANOGPT_DECAY_ITERS)
    karp, ref, full = [], [], []
    for seed in seeds:
        t, m = time_to("gpt", "shakespeare", dataclasses.replace(cfg, seed=seed), preset=GPT_PRESET,
                       overrides=GPT_MODEL)
        karp.append(t if m["loss"] <= target else float("inf"))
        full.append(m["loss"])
        run = RefRun(train_ids, ds.vocab_size, seed=1337 + seed, recipe=recipe)
        t_ref, iters, last = time_to_loss(run, task, target, start=recipe.lr_decay_iters // 2,
                                          **NANOGPT_CHECK)
        ref.append(t_ref if t_ref is not None else float("inf"))
        print(f"#   seed {seed}: karp {t:.1f} s, full validation loss {m['loss']:.3f}; nanoGPT "
              f"{'not reached' if t_ref is None else f'{t_ref:.1f} s'} at iteration {iters}, "
              f"subset loss {last:.3f}", flush=True)
    k, r = statistics.median(karp), statistics.median(ref)
    line(f"gpt_time_to_val_{target}", k, "s",
         f"goal <= 40 s; median of {len(seeds)} seeds, {sum(map(math.isfinite, karp))}/{len(seeds)} "
         f"reached; {cfg.steps} steps, evaluation of the whole split included; full validation loss "
         f"{min(full):.3f}-{max(full):.3f} nats/char")
    line(f"nanogpt_time_to_val_{target}", r, "s",
         f"nanoGPT's CPU recipe re-implemented (bench/nanogpt_ref.py), same text, split and threads, "
         f"lr decayed over {recipe.lr_decay_iters} iterations; {sum(map(math.isfinite, ref))}/{len(seeds)} "
         f"reached; "
         f"median of {len(seeds)} seeds, its checks not counted")
    line("gpt_speedup_vs_nanogpt", r / k, "x", "goal >= 1.5")


# --- throughput


def recurrent_flops(model: torch.nn.Module, tokens: int) -> float:
    """Training FLOPs of the fused nn.LSTM / nn.GRU / nn.RNN layers, which FlopCounterMode does
    not see: per token and layer 2 * gates * H * (I + H) forward, times 3 for forward + backward."""
    total = 0.0
    for m in model.modules():
        if isinstance(m, torch.nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
            dirs = 2 if m.bidirectional else 1
            for layer in range(m.num_layers):
                i = m.input_size if layer == 0 else m.hidden_size * dirs
                total += 3 * 2 * gates * m.hidden_size * (i + m.hidden_size) * dirs * tokens
    return total


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as fc:
        _, loss = model(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() + recurrent_flops(model, x.numel() if x.dtype == torch.long else 0)


def trainer_rate(model_name: str, dataset: str, preset: str | None, batch_size: int,
                 steps: int = 30) -> tuple[float, float]:
    """(achieved FLOP/s, items/s) of our Trainer on this model, after a short warm-up."""
    device = dev.pick_device()
    ds = data.load(dataset)
    model = build_for(model_name, ds, preset=preset).to(device)
    task = make_task(ds, model, augment=True)
    g = torch.Generator().manual_seed(0)
    x, y = task.batch("train", batch_size, g, device)
    flops = step_flops(model, x, y)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, eval_every=0, eval_batches=1)
    tr = Trainer(model, task, cfg, device)
    times = []
    t_last = None
    for rec in tr.run(log_every=1):
        now = time.perf_counter()
        if t_last is not None and rec.step > 5 and rec.val_loss is None:
            times.append(now - t_last)
        t_last = now
    per_step = sorted(times)[len(times) // 2]
    items = batch_size * (x.shape[1] if task.unit == "tokens" else 1)
    return flops / per_step, items / per_step


# --- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="",
                    help="comma list: matmul,cnn,gpt,throughput,ui," + ",".join(SECTIONS))
    ap.add_argument("--ref-seeds", default="1",
                    help="cnn: seeds of the pytorch/examples reference, ~2 min each on a quiet "
                    "machine (default 1, the script's own seed)")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    want = lambda k: not only or k in only  # noqa: E731
    threads = dev.set_threads()
    print(f"# {dev.describe_device(dev.pick_device())}; torch {torch.__version__}; {threads} threads")
    rate = matmul_rate()
    line("matmul_fp32", rate / 1e9, "GFLOP/s", "this machine's reference rate")

    if want("cnn"):
        # issue 25: ~2.5 min on a quiet machine with one reference seed (~2 min of it)
        cnn_section(ref_seeds=tuple(int(v) for v in a.ref_seeds.split(",")))

    if want("gpt"):
        gpt_versus_nanogpt()

    if want("throughput"):
        # FlopCounterMode counts matmuls and convolutions; the fused LSTM kernel's FLOPs are
        # added analytically (recurrent_flops).
        for name, ds, preset, bs in THROUGHPUT:
            fl, items = trainer_rate(name, ds, preset, bs)
            unit = "tokens/s" if ds == "shakespeare" else "images/s"
            line(f"trainer_{name}_{preset or 'default'}", fl / 1e9, "GFLOP/s",
                 f"goal >= {rate / 2e9:,.0f} (half of matmul); {fl / rate:.0%} of matmul; "
                 f"{items:,.0f} {unit}")

    if want("ui"):
        from ui_overhead import ui_overhead_ratio

        ratio, cli_s, ui_s = ui_overhead_ratio()
        line("ui_overhead", ratio, "x", f"goal <= 1.10; CLI {cli_s:.1f} s, app {ui_s:.1f} s")

    for key, module in SECTIONS.items():  # bench/<module>.py: run(line) prints its own lines
        if (key in only) if key in ON_REQUEST else want(key):
            importlib.import_module(module).run(line)


# Recipes. The fast CNN's time-to-accuracy run: SGD + one-cycle + label smoothing, no
# augmentation, 280 steps of 256 (1.2 epochs) on the 'fast-small' preset (16, 24, 48, 96: 0.6-0.7x
# fast's time per training step). Chosen on a validation split, the last 5,000 training images
# (trained on the first 55,000; accuracy there after the whole schedule, seeds 0-2, Dec 2026):
#   fast 280 steps (the old recipe)   91.72 91.64 91.48%   3/3 >= 91%   ~1.0 (cost, fast-steps)
#   fast 200                          91.22 90.68 90.94%   1/3          ~0.71
#   fast-small 280 (chosen)           91.38 91.58 91.00%   3/3          ~0.6
#   fast-small 240                    90.84 91.48 90.90%   1/3          ~0.51
#   fast-small 200                    90.62% (seed 0)      0/1
#   fast-small 240, lr 0.3 / lr 0.4 / no label smoothing: medians 91.10 / 91.10 / 91.16%
#   (2/3, 3/3, 2/3): none as far above 91% as 280 steps, and test accuracy runs ~0.4 below these
# Test-time flips did not win here and are not in karp: without flip augmentation in training the
# mirrored view is unfamiliar (fast 280: 84.0 89.7 87.3%), with it 200 steps gave 90.76% (seed 0)
# against 91.22% without either.
# The GPT is nanoGPT's CPU model (4 x 128, context 64) with rotary embeddings, QK-norm and Muon
# (modded-nanogpt's changes). Steps to 1.88 on a fixed validation subset, one seed each (a loaded
# machine): AdamW lr 5e-3 550; Muon 325 (lr 5e-3), 275 (1e-2); Muon + rotary + QK-norm 200; + ReLU
# squared 175, but ReLU squared costs 12% more a step here (interleaved), so it is left out. Step
# cost against AdamW: Muon 1.13x, rotary + QK-norm 1.35x forward-backward. A fixed budget of 250
# steps, checked on the whole split at its end: 1.842, 1.855, 1.842 over seeds 0-2 (3/3 reach).
FAST_CNN_PRESET = "fast-small"
FAST_CNN_RECIPE = dict(steps=280, batch_size=256, optimizer="sgd", lr=0.2, weight_decay=5e-4,
                       label_smoothing=0.1, warmup=0.25, augment=False, eval_every=0,
                       eval_batches=1)
GPT_PRESET = "small"
GPT_MODEL: dict = dict(rotary=True, qk_norm=True)
GPT_RECIPE = dict(steps=250, batch_size=32, lr=5e-3, optimizer="muon", eval_every=0)
GPT_TARGET = 1.88
# nanoGPT's README runs 2000 iterations (max_iters = lr_decay_iters); on this text they end at
# 1.894 on a 256-window validation subset (seed 1337), short of 1.88, so its lr decays over more, as
# the 100 s run did ("iterations scaled to fill the budget"): over 2500 the same subset reads
# 1.877 at iteration 2000, 1.852 at 2250, the whole split 1.855 at 2500. It may go on at min_lr.
NANOGPT_DECAY_ITERS = 2500
NANOGPT_MAX_ITERS = 4000
NANOGPT_CHECK = dict(every=50, eval_batches=24, eval_batch_size=32)  # 768 windows of 64: 10% of the split
# Sections in their own files (one per issue); each module has run(line) and runs standalone.
SECTIONS: dict[str, str] = {"predict": "bench_predict", "explain": "bench_explain",
                            "evaluate": "bench_evaluate", "text": "bench_text",
                            "seq2seq": "bench_seq2seq", "finetune": "bench_finetune",
                            "generative": "bench_generative", "captioning": "bench_captioning",
                            "autosave": "bench_autosave", "compress": "bench_compress",
                            "load": "bench_load", "interventions": "bench_interventions",
                            "adversarial": "bench_adversarial", "rl": "bench_rl",
                            "first_page": "bench_first_page", "explain_cache": "bench_explain_cache",
                            "vit": "bench_vit", "gpt_zh": "bench_gpt_zh"}
# minutes of simulated classroom; fresh servers and Chromium: only with --only load / first_page
ON_REQUEST = {"load", "first_page"}
THROUGHPUT = [("fast", "fashion-mnist", None, 256), ("vit", "fashion-mnist", None, 256),
              ("gpt", "shakespeare", "shakespeare", 32), ("lstm", "shakespeare", "shakespeare", 32)]

if __name__ == "__main__":
    main()
