"""Speed figures on this machine, one line each: `name: value unit (goal ...)`.

    python bench/run.py            # all figures (a few minutes on a 2-core CPU)
    python bench/run.py --only matmul,throughput

Measured in this run; nothing is copied from elsewhere. Goals come from issue 3.
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


def classic_reference() -> tuple[float, float]:
    """The course material's loop: `classic`, Adam lr 1e-3, batch 64, one epoch, plain PyTorch."""
    ds = data.load("fashion-mnist")
    torch.manual_seed(0)
    model = build_for("classic", ds)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = ds.train_x, ds.train_y
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(len(y))
    for i in range(0, len(y), 64):
        idx = perm[i:i + 64]
        _, loss = model(x[idx].float() / 255, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(ds.test_x[i:i + 1000].float() / 255)[0].argmax(1)
                          for i in range(0, len(ds.test_y), 1000)])
    return elapsed, (pred == ds.test_y).float().mean().item()


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
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    want = lambda k: not only or k in only  # noqa: E731
    threads = dev.set_threads()
    print(f"# {dev.describe_device(dev.pick_device())}; torch {torch.__version__}; {threads} threads")
    rate = matmul_rate()
    line("matmul_fp32", rate / 1e9, "GFLOP/s", "this machine's reference rate")

    if want("cnn"):
        # a 2-core machine's hiccups move one run by up to 30%: the median of three
        runs = [time_to("fast", "fashion-mnist", TrainConfig(**FAST_CNN_RECIPE)) for _ in range(3)]
        times = sorted(t for t, _ in runs)
        t, m = times[1], runs[0][1]
        line("fast_cnn_time_to_91pct", t, "s",
             f"goal <= 30 s; median of 3 runs, {times[0]:.1f}-{times[2]:.1f} s; "
             f"reached {min(r[1]['accuracy'] for r in runs):.2%} test accuracy")
        t_ref, acc_ref = classic_reference()
        line("classic_reference_1_epoch", t_ref, "s",
             f"course loop, Adam, batch 64: {acc_ref:.2%} test accuracy")
        line("fast_cnn_speedup_vs_reference", t_ref / t, "x")

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


# Recipes: the fast CNN's time-to-accuracy run (SGD + one-cycle + label smoothing, 1.2 epochs;
# batch 256 runs about 15% more images a second than 128 here, and reaches 91.1-91.2% over 2 seeds);
# the GPT is nanoGPT's CPU model (4 x 128, context 64) with rotary embeddings, QK-norm and Muon
# (modded-nanogpt's changes). Steps to 1.88 on a fixed validation subset, one seed each (a loaded
# machine): AdamW lr 5e-3 550; Muon 325 (lr 5e-3), 275 (1e-2); Muon + rotary + QK-norm 200; + ReLU
# squared 175, but ReLU squared costs 12% more a step here (interleaved), so it is left out. Step
# cost against AdamW: Muon 1.13x, rotary + QK-norm 1.35x forward-backward. A fixed budget of 250
# steps, checked on the whole split at its end: 1.842, 1.855, 1.842 over seeds 0-2 (3/3 reach).
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
                            "adversarial": "bench_adversarial", "rl": "bench_rl"}
ON_REQUEST = {"load"}  # minutes of simulated classroom: only with --only load
THROUGHPUT = [("fast", "fashion-mnist", None, 256), ("vit", "fashion-mnist", None, 256),
              ("gpt", "shakespeare", "shakespeare", 32), ("lstm", "shakespeare", "shakespeare", 32)]

if __name__ == "__main__":
    main()
