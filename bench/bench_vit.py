"""Where a ViT training step's time goes (issue 25, goal 3: "at least 50% of matmul, or a measured
account of where the rest goes with the best fix found").

One step of karp's `vit` (preset fashion: 7x7 patches, 17 tokens, 4 x 96, batch 256) through the
Trainer, profiled with torch.profiler: self CPU time by op class; the FLOP rate of the step against
this machine's 1024^3 matmul rate and against torch.mm / addmm timed at the ViT's own matmul shapes
(the honest ceiling: a 4352 x 96 x 288 product does not run at the 1024^3 rate); then the fixes that
stood a chance, each interleaved with the baseline in this process (A, B, A, B ..., median step).

    python bench/bench_vit.py        # ~1 min on a quiet 2-core machine
"""
from __future__ import annotations

import copy
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models.models import build_for  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402
from run import step_flops  # noqa: E402

BATCH = 256
MATMUL = ("aten::mm", "aten::addmm", "aten::bmm")
# op name -> class; the first class whose key is a substring of the name wins
CLASSES = (("matmul", MATMUL + ("aten::mkldnn_convolution", "aten::convolution_backward")),
           ("attention (SDPA)", ("scaled_dot_product",)),
           ("GELU", ("gelu",)), ("layer norm", ("layer_norm",)), ("softmax / loss", ("softmax", "nll")),
           ("optimiser", ("_foreach", "addcdiv", "lerp", "sqrt", "linalg_vector_norm", "adam")),
           ("copies / cat / fill", ("copy_", "cat", "fill_", "zero_", "clone", "contiguous", "index")),
           ("elementwise", ("add", "mul", "div", "sub", "sum", "where", "rand", "bernoulli")))


def op_class(name: str) -> str:
    for cls, keys in CLASSES:
        if any(k in name for k in keys):
            return cls
    return "other"


def vit_trainer(ds, base: torch.nn.Module, variant: str = "baseline") -> Iterator:
    model = copy.deepcopy(base)
    task = make_task(ds, model, augment=True)
    tr = Trainer(model, task, TrainConfig(steps=10**6, batch_size=BATCH, eval_every=0, eval_batches=1),
                 torch.device("cpu"))
    if variant == "fused AdamW":
        old = tr.optimizer
        tr.optimizers["model"] = tr.optimizer = torch.optim.AdamW(old.param_groups, lr=old.defaults["lr"],
                                                                betas=old.defaults["betas"], fused=True)
    elif variant == "explicit attention":  # softmax(QK^T)V spelled out (bmm) instead of the fused kernel
        for b in model.blocks:
            b.forward = (lambda f: lambda x, w=False: (f(x, True)[0], None))(b.forward)
    return tr.run(log_every=1)  # one record (one step) per next()


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each fn(), the fns called in turn (A, B, C, A, B, C ...) after 3 warm-ups."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def mm_fn(name: str, shapes: list) -> Callable[[], object]:
    """torch.mm / addmm / bmm on fresh random operands of these input shapes."""
    if name == "aten::addmm":
        bias, a, b = (torch.randn(s) for s in shapes[:3])
        return lambda: torch.addmm(bias, a, b)
    a, b = (torch.randn(s) for s in shapes[:2])
    return (lambda: torch.mm(a, b)) if name == "aten::mm" else (lambda: torch.bmm(a, b))


def mm_flops(name: str, shapes: list) -> float:
    if name == "aten::bmm":
        (b, m, k), (_, _, n) = shapes[:2]
        return 2.0 * b * m * k * n
    (m, k), (_, n) = shapes[1:3] if name == "aten::addmm" else shapes[:2]
    return 2.0 * m * k * n


def run(line) -> None:
    ds = data.load("fashion-mnist")
    torch.manual_seed(0)
    base = build_for("vit", ds)
    task = make_task(ds, base, augment=True)
    x, y = task.batch("train", BATCH, torch.Generator().manual_seed(0), "cpu")
    flops = step_flops(base, x, y)

    # --- the account: one profiled stretch of steps
    it = vit_trainer(ds, base)
    for _ in range(5):
        next(it)
    steps = 10
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            next(it)
    by_class: dict[str, float] = defaultdict(float)
    mms: dict[tuple, list] = {}
    for ev in prof.key_averages(group_by_input_shape=True):
        if ev.key.startswith(("Optimizer.", "autograd::", "ProfilerStep")):
            continue  # wrappers: their ops are counted on their own
        by_class[op_class(ev.key)] += ev.self_cpu_time_total / 1e6
        if ev.key == "aten::addmm":  # its bias copied into the output is matmul time, not a copy
            inner = (ev.cpu_time_total - ev.self_cpu_time_total) / 1e6
            by_class["matmul"] += inner
            by_class["copies / cat / fill"] -= inner
        if ev.key in MATMUL:
            mms[(ev.key, str(ev.input_shapes))] = [ev.key, ev.input_shapes, ev.count]
    total = sum(by_class.values())
    shares = sorted(by_class.items(), key=lambda kv: -kv[1])
    line("vit_step_account", 100 * by_class["matmul"] / total, "% of step in matmul",
         "profiled self CPU time by op class: "
         + ", ".join(f"{k} {v / total:.0%}" for k, v in shares))
    mm_flop = sum(mm_flops(k, s) * n for k, s, n in mms.values()) / steps  # per step
    mm_in_step = by_class["matmul"] / steps

    # --- the step's rate (not profiled), the 1024^3 matmul, the ViT's own matmuls timed alone
    # (the honest ceiling: a 4352 x 96 x 288 product does not run at the 1024^3 rate) and the fixes
    # that stood a chance, all interleaved in one loop
    own = [(mm_fn(k, s), max(1, round(n / steps))) for k, s, n in mms.values()]
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    fns: dict[str, Callable[[], object]] = {"matmul 1024": lambda: a @ b,
                                            "own shapes": lambda: [f() for f, n in own for _ in range(n)]}
    variants = ("baseline", "fused AdamW", "explicit attention")
    fns |= {v: (lambda it: lambda: next(it))(vit_trainer(ds, base, v)) for v in variants}
    med = interleaved(fns, rounds=15)
    rate = 2 * 1024**3 / med["matmul 1024"]
    ceiling = mm_flop / med["own shapes"]
    fl_rate = flops / med["baseline"]
    line("vit_matmul_at_own_shapes", ceiling / 1e9, "GFLOP/s",
         f"torch.mm/addmm/bmm timed alone at the ViT's {len(mms)} matmul shapes: {ceiling / rate:.0%} of "
         f"the 1024^3 rate {rate / 1e9:,.0f} GFLOP/s (interleaved); inside the profiled step the same "
         f"matmuls ran at {mm_flop / mm_in_step / 1e9:,.0f} GFLOP/s ({mm_flop / mm_in_step / rate:.0%})")
    line("vit_step_rate", fl_rate / 1e9, "GFLOP/s",
         f"goal >= {rate / 2e9:,.0f} (half of matmul); {fl_rate / rate:.0%} of the 1024^3 matmul rate, "
         f"{fl_rate / ceiling:.0%} of matmul at its own shapes; {BATCH / med['baseline']:,.0f} images/s; "
         f"{flops / 1e9:.2f} GFLOP a step, {mm_flop / flops:.0%} of them in mm/addmm/bmm, whose "
         f"time alone is {med['own shapes'] / med['baseline']:.0%} of the step")
    for v in variants[1:]:
        line(f"vit_fix_{v.replace(' ', '_')}", med["baseline"] / med[v], "x baseline speed",
             f"{flops / med[v] / rate:.0%} of matmul, {BATCH / med[v]:,.0f} images/s, interleaved "
             f"with the baseline (median of 15 steps each)")

if __name__ == "__main__":
    from run import line

    from karp_models import device as dev

    dev.set_threads()
    run(line)
