"""DQN's two stabilisers (Mnih et al. 2015, "Human-level control through deep reinforcement
learning"): an experience replay buffer sampled uniformly, and the target r + gamma * (1 - done) *
max_a Q_target(s', a) computed by a separate, periodically copied target network."""
from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', done), the oldest overwritten when full.

    obs_dim: length of an observation vector; capacity: transitions kept. Observations are stored
    as float32 (N, obs_dim). sample() draws uniformly with replacement from a torch.Generator, so
    a run is reproducible from its generator's state."""

    def __init__(self, obs_dim: int, capacity: int):
        if capacity < 1 or obs_dim < 1:
            raise ValueError("capacity and obs_dim must be >= 1")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None:
        """Store one transition. done: the episode ended in s' (terminated, not merely cut off by a
        time limit: a cut-off state still has a future worth bootstrapping)."""
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.dones[i] = next_obs, float(done)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        """(s (B, D), a (B,), r (B,), s' (B, D), done (B,)) tensors on `device`. Raises
        ValueError on an empty buffer."""
        if self.size == 0:
            raise ValueError("the replay buffer is empty")
        idx = torch.randint(self.size, (batch_size,), generator=generator).numpy()
        return tuple(torch.from_numpy(a[idx]).to(device) for a in
                     (self.obs, self.actions, self.rewards, self.next_obs, self.dones))


def dqn_target(rewards: torch.Tensor, dones: torch.Tensor, next_q: torch.Tensor,
               gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - done) * max_a Q_target(s', a) (Mnih et al. 2015, Algorithm 1).

    rewards, dones: (B,); next_q: (B, n_actions), the target network's values of s'. Returns (B,),
    without gradient."""
    with torch.no_grad():
        return rewards + gamma * (1.0 - dones.float()) * next_q.max(dim=-1).values
