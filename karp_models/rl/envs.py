"""The environments an agent learns in, through Gymnasium's standard API (reset(seed=...), step ->
obs, reward, terminated, truncated, info), and what the network sees of them.

CartPole-v1 (Barto, Sutton and Anderson 1983): four numbers, two actions, reward 1 a step, at most
500 steps; "solved" is an average of at least 475 over 100 episodes. Atari Pong (ALE/Pong-v5,
ale-py, whose wheel ships the ROM so it works offline): Karpathy's "Pong from Pixels" (2016)
preprocessing: crop rows 35:195, keep every second pixel of channel 0, erase the two background
shades (144, 109), set the rest to 1 -> 80x80 = 6400 numbers, and feed the difference of two
consecutive frames so a still picture shows motion; two actions, UP and DOWN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from karp_models.i18n import N_

# --- Karpathy's Pong preprocessing

PONG_CROP = (35, 195)           # rows kept: the playing field without the score board
PONG_BACKGROUND = (144, 109)    # channel-0 values of the two background shades
PONG_SIDE = 80                  # (195 - 35) / 2


def pong_frame(frame: np.ndarray) -> np.ndarray:
    """A raw Atari frame (210, 160, 3) uint8 -> (6400,) float32 of 0 and 1 (Karpathy's prepro):
    crop 35:195, downsample by 2 (channel 0), background 144 and 109 -> 0, anything else -> 1."""
    if frame.ndim != 3 or frame.shape[0] < PONG_CROP[1]:
        raise ValueError(f"an Atari frame is (210, 160, 3), got {frame.shape}")
    x = frame[PONG_CROP[0]:PONG_CROP[1]:2, ::2, 0].copy()            # (80, 80)
    x[np.isin(x, PONG_BACKGROUND)] = 0
    return (x != 0).astype(np.float32).ravel()                       # (6400,)


class FrameDifference:
    """What the Pong policy sees: the current preprocessed frame minus the previous one (zeros at
    an episode's first frame). reset() at every new episode; call with each raw frame."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None

    def reset(self) -> None:
        self.prev = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        cur = pong_frame(frame)
        x = cur - self.prev if self.prev is not None else np.zeros_like(cur)   # (6400,) in {-1, 0, 1}
        self.prev = cur
        return x


class Identity:
    """A low-dimensional state seen as it is (CartPole), as float32."""

    def reset(self) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, np.float32).ravel()


# --- the environments

@dataclass(frozen=True, eq=False)
class EnvData:
    """An environment as karp's "dataset" for an agent (source and note: English, marked for
    translation where shown): which Gymnasium id, what the network sees
    (obs_dim numbers), its actions (names, and the environment's own action ids), how it is
    scored. solved_at: the mean return over eval_episodes that counts as solved (None: none);
    reset_on_reward: each point is its own game for the returns (Pong); greedy: evaluate with the
    most probable action (else sampled from the policy, seeded)."""

    name: str
    env_id: str
    obs_dim: int
    action_names: tuple[str, ...]
    env_actions: tuple[int, ...]
    source: str
    note: str
    eval_episodes: int
    solved_at: float | None = None
    reset_on_reward: bool = False
    greedy: bool = True
    kind: str = "state"            # 'state' (a vector) or 'pixels' (Atari frames)
    max_steps: int | None = None   # cut an episode off after this many agent steps (None: the env's)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    def make(self) -> Any:
        """A fresh Gymnasium environment (ale-py registered for Atari). Raises ImportError with the
        package to install when Gymnasium or ale-py is missing."""
        import gymnasium as gym

        if self.env_id.startswith("ALE/"):
            import ale_py

            gym.register_envs(ale_py)
        return gym.make(self.env_id, **({"max_episode_steps": self.max_steps} if self.max_steps else {}))

    def observer(self) -> FrameDifference | Identity:
        return FrameDifference() if self.kind == "pixels" else Identity()


CARTPOLE = EnvData("cartpole", "CartPole-v1", 4, (N_("push left"), N_("push right")), (0, 1),
                   N_("Gymnasium CartPole-v1 (Barto, Sutton and Anderson 1983)"),
                   N_("solved: average reward >= 475 over 100 episodes"), eval_episodes=100, solved_at=475.0)
PONG = EnvData("pong", "ALE/Pong-v5", PONG_SIDE * PONG_SIDE, (N_("up"), N_("down")), (2, 3),
               N_("Atari 2600 Pong through ale-py (ROM in its wheel), Karpathy's preprocessing"),
               N_("frame skip 4, sticky actions 0.25; a game is 21 points"), eval_episodes=10,
               reset_on_reward=True, greedy=False, kind="pixels")
ENVS: dict[str, EnvData] = {e.name: e for e in (CARTPOLE, PONG)}


def available(env: EnvData) -> tuple[bool, str]:
    """Whether the environment can be made here, and the command that gets it if not (the
    packages looked up, not imported: fast)."""
    from importlib.util import find_spec

    needed = ("gymnasium", "ale_py") if env.env_id.startswith("ALE/") else ("gymnasium",)
    if all(find_spec(m) is not None for m in needed):
        return True, ""
    return False, "pip install gymnasium==1.4.0 ale-py==0.12.1"


# --- playing an episode

@dataclass
class Episode:
    """One episode's record: what the network saw (T, obs_dim) float32 (int8 for pixels), the
    action indices (T,), rewards (T,), the policy's action probabilities (T, n_actions) when the
    policy gave them, its value estimates (T,) when it gave them, and frames to show (every
    `frame_every`-th step: CartPole's states (K, 4), Pong's cropped colour frames (K, 80, 80, 3)
    uint8)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    probs: np.ndarray | None
    values: np.ndarray | None
    frames: np.ndarray | None
    frame_steps: np.ndarray | None
    truncated: bool = False

    @property
    def total(self) -> float:
        return float(self.rewards.sum())

    def __len__(self) -> int:
        return len(self.actions)


def display_frame(env: EnvData, raw: np.ndarray, state: np.ndarray) -> np.ndarray:
    """What a person is shown of a step: CartPole's 4 numbers, Pong's playing field at half size."""
    if env.kind == "pixels":
        return raw[PONG_CROP[0]:PONG_CROP[1]:2, ::2].copy()            # (80, 80, 3) uint8
    return np.asarray(state, np.float32).copy()


Policy = Callable[[np.ndarray], tuple[int, np.ndarray | None, float | None]]


def play_episode(env: EnvData, gym_env: Any, policy: Policy, seed: int, *,
                 keep_frames: int = 0, frame_every: int = 1, max_steps: int | None = None) -> Episode:
    """Play one episode from reset(seed=seed). policy(obs) -> (action index, probabilities or
    None, value or None). keep_frames: at most this many display frames (every frame_every-th
    step). max_steps: stop after this many steps (the episode is then marked truncated)."""
    observe = env.observer()
    observe.reset()
    raw, _info = gym_env.reset(seed=int(seed))
    obs_l, act_l, rew_l, prob_l, val_l, frames, fsteps = [], [], [], [], [], [], []
    truncated = False
    t = 0
    while True:
        x = observe(raw)
        if keep_frames and t % frame_every == 0 and len(frames) < keep_frames:
            frames.append(display_frame(env, raw, x))
            fsteps.append(t)
        a, p, v = policy(x)
        raw, r, term, trunc, _info = gym_env.step(env.env_actions[a])
        obs_l.append(x.astype(np.int8) if env.kind == "pixels" else x)
        act_l.append(a)
        rew_l.append(float(r))
        if p is not None:
            prob_l.append(p)
        if v is not None:
            val_l.append(v)
        t += 1
        if term or trunc or (max_steps is not None and t >= max_steps):
            truncated = bool(trunc or not term)
            break
    return Episode(obs=np.stack(obs_l), actions=np.asarray(act_l, np.int64),
                   rewards=np.asarray(rew_l, np.float32),
                   probs=np.stack(prob_l).astype(np.float32) if prob_l else None,
                   values=np.asarray(val_l, np.float32) if val_l else None,
                   frames=np.stack(frames) if frames else None,
                   frame_steps=np.asarray(fsteps, np.int64) if fsteps else None, truncated=truncated)
