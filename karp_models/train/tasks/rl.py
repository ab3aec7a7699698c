"""Reinforcement learning as Tasks for the one Trainer: the "data" is the environment, and a
batch is experience the task gathers itself with the model it trains.

Reinforce: REINFORCE with a baseline (Williams 1992) in the recipe of Karpathy's "Deep
Reinforcement Learning: Pong from Pixels" (2016): play a batch of whole episodes with the policy,
discount the rewards (reset at every point in Pong), standardise them (the batch mean is the
baseline) and raise the log-probability of each action in proportion; RMSProp with decay 0.99.
DQN: deep Q-learning (Mnih et al. 2015): epsilon-greedy steps into a replay buffer, a minibatch
drawn from it each step, the Huber loss against r + gamma * (1 - done) * max Q_target(s', .),
the target network a copy of the online one every target_every steps.

A trainer step is one update: a batch of episodes (Reinforce, unit 'episodes') or train_every
environment steps and one minibatch (DQN, unit 'steps'). The environment's seeds and every random
action come from the run's torch.Generator, so a run is reproducible; a resumed run starts a
fresh episode (and, for DQN, refills its replay buffer and copies its target network anew).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.i18n import N_
from karp_models.rl.envs import EnvData, Episode, play_episode
from karp_models.rl.replay import ReplayBuffer, dqn_target
from karp_models.rl.returns import discounted_returns, normalised_advantages
from karp_models.train.previews import Chart
from karp_models.train.tasks.base import as_device
from karp_models.train.trainer import TrainConfig

EVAL_SEED = 10_000          # evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ...
RUNNING = 0.99              # Karpathy's running mean: running = 0.99 * running + 0.01 * reward
PREVIEW_FRAMES = 600        # display frames kept of an episode (Pong: every second step)
FIRST_PREVIEW_STEPS = 300   # the untrained agent's first preview: at most this many steps (a whole
                            # untrained Pong game is thousands of steps, about half a minute on a laptop)

REWARD_CHART = Chart(N_("Reward per episode"), ("episode_reward", "running_reward"),
                     (N_("episode reward"), N_("running mean")), N_("reward"), val=False)
EVAL_CHART = Chart(N_("Held-out episodes (seeded)"), ("mean_return",), (N_("mean reward"),),
                   N_("reward"), train=False)


@dataclass(frozen=True)
class AgentPreview:
    """An episode the agent played, for the live view: what a person sees of each kept step
    (frames: CartPole's states (K, 4) float32 or Pong's field (K, 80, 80, 3) uint8, at steps
    frame_steps (K,)), and per step the action (T,), the reward (T,), the policy's action
    probabilities (T, A) (None for DQN) and DQN's value estimate max_a Q (T,) (None for a policy)."""

    step: int
    env: str
    kind: str
    action_names: tuple[str, ...]
    frames: np.ndarray | None
    frame_steps: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    probs: np.ndarray | None
    values: np.ndarray | None

    @property
    def total(self) -> float:
        return float(self.rewards.sum())


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def policy_actor(model: nn.Module, generator: torch.Generator | None, greedy: bool = False):
    """A play_episode policy from a policy network: sample (from `generator`) or take the most
    probable action; returns (action, probabilities, None)."""
    dev = _device(model)

    def act(x: np.ndarray) -> tuple[int, np.ndarray, None]:
        with torch.no_grad():
            p = model.probs(torch.from_numpy(np.asarray(x, np.float32))[None].to(dev))[0].float().cpu()  # (A,)
        if greedy:
            a = int(p.argmax())
        else:
            a = int(torch.multinomial(p, 1, generator=generator)) if len(p) > 2 else \
                int(float(torch.rand(1, generator=generator)) < float(p[1]))
        return a, p.numpy(), None
    return act


def q_actor(model: nn.Module, generator: torch.Generator | None, epsilon: float = 0.0):
    """A play_episode policy from a Q network: epsilon-greedy; returns (action, None, max Q)."""
    dev = _device(model)
    n = model.config.n_actions

    def act(x: np.ndarray) -> tuple[int, None, float]:
        with torch.no_grad():
            q = model(torch.from_numpy(np.asarray(x, np.float32))[None].to(dev))[0][0].float().cpu()  # (A,)
        a = int(q.argmax())
        if epsilon > 0 and float(torch.rand(1, generator=generator)) < epsilon:
            a = int(torch.randint(n, (1,), generator=generator))
        return a, None, float(q.max())
    return act


def play(model: nn.Module, env: EnvData, seed: int, *, gym_env: Any = None, keep_frames: int = PREVIEW_FRAMES,
         max_steps: int | None = None) -> Episode:
    """One seeded episode as evaluation plays it (a policy: greedy or sampled from a generator
    seeded with `seed`, as env.greedy says; a Q network: greedy), keeping display frames."""
    was = model.training
    model.eval()
    try:
        g = torch.Generator().manual_seed(int(seed))
        act = q_actor(model, g) if _is_q(model) else policy_actor(model, g, env.greedy)
        return play_episode(env, gym_env if gym_env is not None else env.make(), act, seed,
                            keep_frames=keep_frames, frame_every=_frame_every(env), max_steps=max_steps)
    finally:
        model.train(was)


def evaluate_agent(model: nn.Module, env: EnvData, n: int) -> dict[str, float]:
    """n seeded episodes (seeds EVAL_SEED + i): loss (the negative mean reward: what training
    lowers), mean_return, return_std, mean_length, episodes. Deterministic on one machine."""
    gym_env = env.make()
    totals, lengths = [], []
    for i in range(n):
        ep = play(model, env, EVAL_SEED + i, gym_env=gym_env, keep_frames=0)
        totals.append(ep.total)
        lengths.append(len(ep))
    gym_env.close()
    m = float(np.mean(totals))
    return {"loss": -m, "mean_return": m, "return_std": float(np.std(totals)),
            "mean_length": float(np.mean(lengths)), "episodes": float(n)}


def _frame_every(env: EnvData) -> int:
    return 2 if env.kind == "pixels" else 1


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(2 ** 31 - 1, (1,), generator=generator))


def _is_q(model: nn.Module) -> bool:
    return hasattr(model, "config") and not hasattr(model, "probs")


# --- REINFORCE


class Reinforce:
    """REINFORCE with a baseline over whole episodes (see the module docstring). batch_size is the
    number of episodes per update (Karpathy's 10). training_step returns loss, episode_reward (the
    batch's mean), running_reward and episode_length."""

    unit = "episodes"
    items_per_epoch = 1       # an 'epoch' is one episode
    eval_split = "test"
    preview_every = 1
    charts = (REWARD_CHART, EVAL_CHART)

    def __init__(self, env: EnvData, model: nn.Module, gamma: float = 0.99):
        self.env, self.model, self.gamma = env, model, gamma
        self._gym: Any = None
        self.running: float | None = None
        self.last: Episode | None = None

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def configure_optimizers(self, model: nn.Module, cfg: TrainConfig,
                             device: torch.device) -> dict[str, torch.optim.Optimizer]:
        """RMSProp with decay 0.99, Karpathy's (no weight decay)."""
        return {"policy": torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.99)}

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None, augment: bool = True) -> dict[str, Any]:
        """Play batch_size episodes with the current policy (sampled actions): observations
        (N, obs_dim) float32, actions (N,), advantages (N,), each episode's total reward."""
        if self._gym is None:
            self._gym = self.env.make()
        act = policy_actor(self.model, generator)
        was = self.model.training
        self.model.eval()
        try:
            eps = [play_episode(self.env, self._gym, act, _seed(generator),
                                keep_frames=PREVIEW_FRAMES if i == batch_size - 1 else 0,
                                frame_every=_frame_every(self.env)) for i in range(batch_size)]
        finally:
            self.model.train(was)
        self.last = eps[-1]
        rewards = np.concatenate([e.rewards for e in eps])
        dones = np.concatenate([np.arange(len(e)) == len(e) - 1 for e in eps])
        adv = normalised_advantages(discounted_returns(rewards, self.gamma, dones, self.env.reset_on_reward))
        totals = [e.total for e in eps]
        for t in totals:
            self.running = t if self.running is None else RUNNING * self.running + (1 - RUNNING) * t
        device = as_device(device)
        return {"obs": torch.from_numpy(np.concatenate([e.obs for e in eps])).to(device),
                "actions": torch.from_numpy(np.concatenate([e.actions for e in eps])).to(device),
                "advantages": torch.from_numpy(adv).to(device),
                "totals": totals, "length": float(len(rewards)) / batch_size}

    def training_step(self, model: nn.Module, batch: dict[str, Any], ctx: Any) -> dict[str, torch.Tensor]:
        logits, _ = model(batch["obs"].float())                             # (N, 1) or (N, A)
        logp = model.log_prob(logits, batch["actions"])                    # (N,)
        loss = -(logp * batch["advantages"]).mean()                        # the policy-gradient surrogate
        t = lambda v: torch.tensor(float(v), device=loss.device)  # noqa: E731
        return {"loss": loss, "episode_reward": t(np.mean(batch["totals"])),
                "running_reward": t(self.running), "episode_length": t(batch["length"])}

    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str | None = None, max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """env.eval_episodes seeded episodes (an interval evaluation: at most max_batches)."""
        return _evaluate(model, self.env, max_batches)

    def preview(self, model: nn.Module, device: torch.device, step: int) -> AgentPreview:
        """The last episode played in training (before any: the first FIRST_PREVIEW_STEPS steps
        of one seeded episode)."""
        ep = self.last if self.last is not None else play(model, self.env, EVAL_SEED, max_steps=FIRST_PREVIEW_STEPS)
        return _preview(self.env, ep, step)

    def meta(self) -> dict[str, Any]:
        return {"env": {"name": self.env.name, "id": self.env.env_id, "actions": list(self.env.action_names),
                        "gamma": self.gamma, "eval_episodes": self.env.eval_episodes,
                        "eval_seeds": f"{EVAL_SEED}..{EVAL_SEED + self.env.eval_episodes - 1}",
                        "solved_at": self.env.solved_at}}

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state.get("running")


def _evaluate(model: nn.Module, env: EnvData, max_batches: int | None) -> dict[str, float]:
    """evaluate_agent over env.eval_episodes episodes, or at most max_batches of them."""
    n = env.eval_episodes if max_batches is None else max(1, min(env.eval_episodes, max_batches))
    return evaluate_agent(model, env, n)


def _preview(env: EnvData, ep: Episode, step: int) -> AgentPreview:
    return AgentPreview(step=step, env=env.name, kind=env.kind, action_names=env.action_names,
                        frames=ep.frames, frame_steps=ep.frame_steps, actions=ep.actions,
                        rewards=ep.rewards, probs=ep.probs, values=ep.values)


# --- DQN


class DQN:
    """Deep Q-learning with experience replay and a target network (see the module docstring).
    batch_size is the minibatch drawn from the buffer. The exploration, buffer and target
    settings are the class's (a CartPole recipe after CleanRL's dqn.py, shortened)."""

    unit = "steps"
    items_per_epoch = 1000     # an 'epoch' is 1000 environment steps
    eval_split = "test"
    preview_every = 50
    charts = (REWARD_CHART, EVAL_CHART,
              Chart(N_("Exploration and value"), ("epsilon", "q_mean"),
                    (N_("epsilon: share of random actions"), N_("mean Q of the actions taken")), N_("value"),
                    val=False))

    buffer_size = 50_000
    learn_start = 1_000        # random steps before the first update
    train_every = 1            # environment steps per update
    target_every = 250         # updates between copies to the target network
    eps_start, eps_end, eps_steps = 1.0, 0.05, 10_000

    def __init__(self, env: EnvData, model: nn.Module, gamma: float = 0.99):
        if env.kind != "state":
            raise ValueError(f"DQN here learns from low-dimensional states; {env.name} is pixels "
                             f"(Pong from pixels is REINFORCE's: --model reinforce)")
        self.env, self.model, self.gamma = env, model, gamma
        self.buffer = ReplayBuffer(env.obs_dim, self.buffer_size)
        self._gym: Any = None
        self._obs: np.ndarray | None = None
        self._observe = env.observer()
        self._frames: list[np.ndarray] = []
        self._values: list[float] = []
        self._rewards: list[float] = []
        self._actions: list[int] = []
        self.target: nn.Module | None = None
        self.env_steps = 0
        self.updates = 0
        self.running: float | None = None
        self.last_return: float | None = None
        self.last: Episode | None = None

    def items_per_batch(self, batch_size: int) -> int:
        return self.train_every

    def configure_optimizers(self, model: nn.Module, cfg: TrainConfig,
                             device: torch.device) -> dict[str, torch.optim.Optimizer]:
        """Adam at cfg.lr, no weight decay."""
        return {"q": torch.optim.Adam(model.parameters(), lr=cfg.lr)}

    def epsilon(self) -> float:
        f = min(1.0, self.env_steps / self.eps_steps)
        return self.eps_start + f * (self.eps_end - self.eps_start)

    def _reset(self, generator: torch.Generator) -> None:
        self._observe.reset()
        raw, _info = self._gym.reset(seed=_seed(generator))
        self._obs = self._observe(raw)
        self._frames, self._values, self._rewards, self._actions = [], [], [], []

    def _env_step(self, generator: torch.Generator, random: bool) -> None:
        x = self._obs
        with torch.no_grad():
            q = self.model(torch.from_numpy(x)[None].to(_device(self.model)))[0][0].float().cpu()
        a = int(q.argmax())
        if random or float(torch.rand(1, generator=generator)) < self.epsilon():
            a = int(torch.randint(self.env.n_actions, (1,), generator=generator))
        raw, r, term, trunc, _info = self._gym.step(self.env.env_actions[a])
        nxt = self._observe(raw)
        self.buffer.add(x, a, float(r), nxt, bool(term))
        if len(self._frames) < PREVIEW_FRAMES and self.env.kind == "state":
            self._frames.append(x.copy())
        self._values.append(float(q.max()))
        self._rewards.append(float(r))
        self._actions.append(a)
        self._obs = nxt
        self.env_steps += 1
        if term or trunc:
            total = float(sum(self._rewards))
            self.last_return = total
            self.running = total if self.running is None else RUNNING * self.running + (1 - RUNNING) * total
            n = len(self._rewards)
            self.last = Episode(obs=np.zeros((0, self.env.obs_dim), np.float32),
                                actions=np.asarray(self._actions), rewards=np.asarray(self._rewards, np.float32),
                                probs=None, values=np.asarray(self._values, np.float32),
                                frames=np.stack(self._frames) if self._frames else None,
                                frame_steps=np.arange(min(n, len(self._frames))), truncated=bool(trunc))
            self._reset(generator)

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None, augment: bool = True) -> tuple[torch.Tensor, ...]:
        """train_every epsilon-greedy steps into the buffer (learn_start random ones first), then a
        minibatch (s, a, r, s', done) of batch_size transitions."""
        if self._gym is None:
            self._gym = self.env.make()
            self._reset(generator)
        was = self.model.training
        self.model.eval()
        try:
            while len(self.buffer) < self.learn_start:
                self._env_step(generator, random=True)
            for _ in range(self.train_every):
                self._env_step(generator, random=False)
        finally:
            self.model.train(was)
        return self.buffer.sample(batch_size, generator, as_device(device))

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, ...], ctx: Any) -> dict[str, torch.Tensor]:
        s, a, r, s2, done = batch
        if self.target is None or self.updates % self.target_every == 0:
            self.target = copy.deepcopy(model).eval().requires_grad_(False)
        q_all, _ = model(s)                                                # (B, A)
        q = q_all.gather(1, a[:, None])[:, 0]                              # (B,)
        y = dqn_target(r, done, self.target(s2)[0], self.gamma)            # (B,)
        loss = F.smooth_l1_loss(q, y)            # Huber: Mnih et al. clip the error term to [-1, 1]
        self.updates += 1
        t = lambda v: torch.tensor(float(v), device=loss.device)  # noqa: E731
        last = self.last_return if self.last_return is not None else float("nan")
        return {"loss": loss, "episode_reward": t(last),
                "running_reward": t(self.running if self.running is not None else float("nan")),
                "epsilon": t(self.epsilon()), "q_mean": q.detach().mean()}

    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str | None = None, max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """env.eval_episodes seeded greedy episodes (an interval evaluation: at most max_batches)."""
        return _evaluate(model, self.env, max_batches)

    def preview(self, model: nn.Module, device: torch.device, step: int) -> AgentPreview:
        """The last episode finished in training, with its value estimates (before any: one
        seeded greedy episode, its first FIRST_PREVIEW_STEPS steps)."""
        ep = self.last if self.last is not None else play(model, self.env, EVAL_SEED, max_steps=FIRST_PREVIEW_STEPS)
        return _preview(self.env, ep, step)

    meta = Reinforce.meta

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running, "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state.get("running")
        self.env_steps = int(state.get("env_steps", 0))
        self.updates = int(state.get("updates", 0))
