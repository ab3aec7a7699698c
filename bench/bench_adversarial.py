"""The cost of PGD adversarial training (Madry et al. 2018) per step against normal training: the
same fast CNN (`fast` preset), Fashion-MNIST, batch 128, one torch thread, the one Trainer, measured
in one run. Each PGD step is a forward and an input-gradient backward pass, so k attack steps should
cost about k + 1 normal steps or less (no weight gradients in the attack). Rounds alternate the
modes so a neighbour's load on a shared machine falls on all of them; medians reported."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models.train.runs import RunSpec, build_run  # noqa: E402
from karp_models.train.trainer import TrainConfig  # noqa: E402

BATCH, WARMUP, STEPS, ROUNDS = 128, 3, 12, 3
MODES = {"normal": dict(), "pgd3": dict(adv_eps=0.1, adv_steps=3), "pgd7": dict(adv_eps=0.1, adv_steps=7)}


def step_seconds(**adv) -> float:
    """Mean seconds of a training step over STEPS steps after WARMUP (evaluation excluded)."""
    cfg = TrainConfig(steps=WARMUP + STEPS + 1, batch_size=BATCH, eval_every=0, **adv)
    trainer = build_run(RunSpec(model="fast", dataset="fashion-mnist", preset="fast", config=cfg,
                                device="cpu")).trainer
    start = None
    for rec in trainer.run(log_every=1):
        if rec.step == WARMUP:
            start = rec.elapsed_s
        if rec.step == WARMUP + STEPS:
            return (rec.elapsed_s - start) / STEPS
    raise RuntimeError("the run ended early")


def run(line) -> None:
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {k: [] for k in MODES}
    for _ in range(ROUNDS):
        for k, adv in MODES.items():
            times[k].append(step_seconds(**adv))
    med = {k: statistics.median(v) for k, v in times.items()}
    what = f"fast CNN (fast preset), Fashion-MNIST, batch {BATCH}, 1 thread; median of {ROUNDS} rounds"
    line("adversarial_normal_step", med["normal"] * 1e3, "ms", what)
    for k in ("pgd3", "pgd7"):
        n = MODES[k]["adv_steps"]
        line(f"adversarial_{k}_step", med[k] * 1e3, "ms", f"PGD {n} steps, eps 0.1; {what}")
        line(f"adversarial_{k}_cost_ratio", med[k] / med["normal"], "x",
             f"PGD-{n} step / normal step; {n + 1} passes where a normal step has 1 forward-backward")


if __name__ == "__main__":
    from run import line as _line

    run(_line)
