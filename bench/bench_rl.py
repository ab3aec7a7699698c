"""Reinforcement learning speed on the CPU (1 torch thread, as the app runs on 2 cores): environment
steps a second with the policy in the loop (CartPole's 4 numbers; Pong's frame, Karpathy's
preprocessing and the 6400x200 policy), each beside the bare environment's rate measured in the same
run (random actions, no network), and the training time until REINFORCE solves CartPole (the page's
recipe: 10 episodes an update, RMSProp lr 1e-2; solved: a mean of >= 475 over 100 seeded episodes,
checked every 5 updates; evaluation time excluded)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from karp_models.models import build_for  # noqa: E402
from karp_models.rl import envs  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.tasks.rl import policy_actor  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402

RECIPE = dict(batch_size=10, lr=1e-2, schedule="constant", warmup=0.0, grad_clip=0.0, eval_every=5,
              eval_batches=None, weight_decay=0.0, seed=0)
MAX_UPDATES = 200


def steps_per_second(env: envs.EnvData, preset: str, steps: int) -> tuple[float, float]:
    """(steps/s with the policy choosing, steps/s of the bare environment)."""
    torch.manual_seed(0)
    model = build_for("reinforce", env, preset=preset).eval()
    g, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    rates = []
    for act in (policy_actor(model, g), lambda x: (int(rng.integers(env.n_actions)), None, None)):
        gym_env, n, t0, seed = env.make(), 0, time.perf_counter(), 0
        while n < steps:
            n += len(envs.play_episode(env, gym_env, act, seed, max_steps=steps - n))
            seed += 1
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], rates[1]


def time_to_solve() -> tuple[float | None, int, float]:
    """(training seconds until solved or None, updates, last mean reward)."""
    env = envs.CARTPOLE
    torch.manual_seed(0)
    model = build_for("reinforce", env, preset="cartpole")
    trainer = Trainer(model, make_task(env, model, kind="reinforce"), TrainConfig(steps=MAX_UPDATES, **RECIPE))
    task = trainer.task
    evaluate, eval_s = task.evaluate, [0.0]

    def timed(*a, **k):                               # evaluation time is not training time
        t0 = time.perf_counter()
        out = evaluate(*a, max_batches=None)           # always the 100 seeded episodes
        eval_s[0] += time.perf_counter() - t0
        return out

    task.evaluate = timed
    stop = __import__("threading").Event()
    last = float("nan")
    for rec in trainer.run(stop=stop, log_every=5):
        if rec.val_loss is not None:
            last = -rec.val_loss
            if last >= env.solved_at:
                return rec.elapsed_s - eval_s[0], rec.step, last
    return None, trainer.step, last


def run(line) -> None:
    torch.set_num_threads(1)
    for env, preset, n in ((envs.CARTPOLE, "cartpole", 20_000), (envs.PONG, "pong", 4_000)):
        with_policy, bare = steps_per_second(env, preset, n)
        line(f"rl_{env.name}_steps_per_s", with_policy, "steps/s",
             f"policy in the loop ({preset} preset); bare environment {bare:,.0f} steps/s, "
             f"{with_policy / bare:.0%} of it")
    t, updates, r = time_to_solve()
    if t is None:
        line("rl_cartpole_time_to_solve", float("nan"), "s", f"not solved in {updates} updates (mean {r:.1f})")
    else:
        line("rl_cartpole_time_to_solve", t, "s",
             f"goal <= 60 s; REINFORCE, {updates} updates ({updates * 10} episodes), mean reward {r:.1f} "
             f"over 100 seeded episodes; training time, evaluations excluded")


if __name__ == "__main__":
    run(lambda name, value, unit, goal="": print(f"{name}: {value:,.3g} {unit}" + (f" ({goal})" if goal else "")))
