"""Discounted returns and normalised advantages: REINFORCE's recipe as in Karpathy's "Pong from
Pixels" (2016) `discount_rewards`, after Williams (1992): the return G_t = sum_k gamma^k r_{t+k},
reset at each episode's end (and, for Pong, at every point scored: each rally is its own game);
the batch's mean return is the baseline and the spread is divided out (Karpathy's "standardise the
rewards to be unit normal", which "helps control the variance of the policy gradient estimator")."""
from __future__ import annotations

import numpy as np


def discounted_returns(rewards: np.ndarray, gamma: float, dones: np.ndarray | None = None,
                       reset_on_reward: bool = False) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, computed backwards over a run of steps.

    Args:
        rewards: (T,) rewards in the order they came, several episodes one after the other.
        gamma: discount in [0, 1].
        dones: (T,) true where an episode ends (G does not flow back across it); None: one episode.
        reset_on_reward: also start afresh after every non-zero reward (Pong: a point ends a rally).

    Returns:
        (T,) float32 returns. Raises ValueError for gamma outside [0, 1] or mismatched shapes.
    """
    r = np.asarray(rewards, dtype=np.float64).ravel()
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    d = np.zeros(len(r), bool) if dones is None else np.asarray(dones, bool).ravel()
    if d.shape != r.shape:
        raise ValueError(f"rewards {r.shape} and dones {d.shape} differ in length")
    out = np.zeros_like(r)
    running = 0.0
    for t in range(len(r) - 1, -1, -1):
        if d[t] or (reset_on_reward and r[t] != 0):
            running = 0.0                    # nothing after an episode's (or a rally's) end counts
        running = running * gamma + r[t]
        out[t] = running
    return out.astype(np.float32)


def normalised_advantages(returns: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(G - mean(G)) / std(G) over the batch: the mean is the baseline (population std, as NumPy's
    np.std in Karpathy's code). A batch whose returns are all equal gives zeros. (T,) float32."""
    g = np.asarray(returns, dtype=np.float64).ravel()
    if g.size == 0:
        return g.astype(np.float32)
    a = g - g.mean()
    s = g.std()
    return (a / s if s > eps else np.zeros_like(a)).astype(np.float32)
