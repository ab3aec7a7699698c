"""RL's pure pieces against hand computations: discounted returns (episode ends, Pong's reset at
every point), normalised advantages, the DQN target, the replay buffer, and Karpathy's Pong
preprocessing on frames made here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from karp_models.rl import envs
from karp_models.rl.replay import ReplayBuffer, dqn_target
from karp_models.rl.returns import discounted_returns, normalised_advantages

# --- returns and advantages


def test_discounted_returns_by_hand():
    # G_2 = 1, G_1 = 1 + 0.9 * 1 = 1.9, G_0 = 1 + 0.9 * 1.9 = 2.71
    np.testing.assert_allclose(discounted_returns([1, 1, 1], 0.9), [2.71, 1.9, 1.0], rtol=1e-6)


def test_returns_do_not_flow_across_an_episode_end():
    g = discounted_returns([1, 1, 1, 1], 0.9, dones=[False, True, False, True])
    np.testing.assert_allclose(g, [1.9, 1.0, 1.9, 1.0], rtol=1e-6)


def test_pong_returns_reset_at_each_point():
    r = [0, 0, -1, 0, 1]
    # with the reset: the rally ending in -1 never sees the later +1
    # G_4 = 1, G_3 = 0.5, G_2 = -1 (reset), G_1 = -0.5, G_0 = -0.25
    np.testing.assert_allclose(discounted_returns(r, 0.5, reset_on_reward=True),
                               [-0.25, -0.5, -1.0, 0.5, 1.0])
    # without it: G_2 = -1 + 0.5 * 0.5 = -0.75, G_1 = -0.375, G_0 = -0.1875
    np.testing.assert_allclose(discounted_returns(r, 0.5), [-0.1875, -0.375, -0.75, 0.5, 1.0])


def test_discounted_returns_refuse_bad_input():
    with pytest.raises(ValueError):
        discounted_returns([1.0], 1.5)
    with pytest.raises(ValueError):
        discounted_returns([1.0, 2.0], 0.9, dones=[True])


def test_normalised_advantages_by_hand():
    # mean 2, population std sqrt(2/3): (x - 2) / 0.8165 = -1.2247, 0, 1.2247
    a = normalised_advantages([1.0, 2.0, 3.0])
    np.testing.assert_allclose(a, [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert abs(a.mean()) < 1e-7 and abs(a.std() - 1) < 1e-6
    np.testing.assert_array_equal(normalised_advantages([5.0, 5.0]), [0.0, 0.0])   # no signal, no push


# --- DQN


def test_dqn_target_by_hand():
    r = torch.tensor([1.0, 0.0, -1.0])
    done = torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([[1.0, 3.0], [5.0, 2.0], [-2.0, -4.0]], requires_grad=True)
    y = dqn_target(r, done, next_q, gamma=0.9)
    # 1 + 0.9 * max(1, 3) = 3.7; done: 0 exactly; -1 + 0.9 * max(-2, -4) = -2.8
    torch.testing.assert_close(y, torch.tensor([3.7, 0.0, -2.8]))
    assert not y.requires_grad                    # the target is a constant for the online network


def test_replay_buffer_keeps_the_newest_and_samples_reproducibly():
    buf = ReplayBuffer(obs_dim=2, capacity=3)
    for i in range(5):
        buf.add(np.array([i, i], np.float32), i % 2, float(i), np.array([i + 1, i + 1], np.float32), i == 4)
    assert len(buf) == 3 and sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]  # 0 and 1 overwritten
    a = buf.sample(8, torch.Generator().manual_seed(0))
    b = buf.sample(8, torch.Generator().manual_seed(0))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    s, act, r, s2, d = a
    torch.testing.assert_close(s2[:, 0], s[:, 0] + 1)                          # transitions stay whole
    torch.testing.assert_close(d, (r == 4).float())
    with pytest.raises(ValueError):
        ReplayBuffer(2, 4).sample(1, torch.Generator())


# --- Karpathy's Pong preprocessing


def _frame() -> np.ndarray:
    f = np.zeros((210, 160, 3), np.uint8)
    f[..., 0] = 144                                   # background
    f[100:110, 20:40, 0] = 109                        # the other background shade
    f[37, 12] = (236, 236, 236)                       # the ball: kept row 37, column 12 -> (1, 6)
    f[38, 12, 0] = 200                                # an even row: dropped by the downsampling (35, 37, ...)
    f[37, 13, 0] = 200                                # an odd column: dropped too
    f[20, 30, 0] = 200                                # the score board, above row 35: cropped
    f[195, 30, 0] = 200                               # row 195 and below: cropped
    f[193, 158, 0] = 92                               # the last kept row and column -> (79, 79)
    return f


def test_pong_frame_crops_downsamples_and_erases_the_background():
    x = envs.pong_frame(_frame())
    assert x.shape == (6400,) and x.dtype == np.float32
    expected = np.zeros((80, 80), np.float32)
    expected[1, 6] = expected[79, 79] = 1             # anything not background is 1, whatever its value
    np.testing.assert_array_equal(x.reshape(80, 80), expected)


def test_frame_difference_starts_at_zero_then_shows_motion():
    diff = envs.FrameDifference()
    a = np.zeros((210, 160, 3), np.uint8)
    a[..., 0] = 144
    a[35, 0, 0] = 236                                 # object at (0, 0)
    b = a.copy()
    b[35, 0, 0] = 144
    b[37, 2, 0] = 236                                 # moved to (1, 1)
    np.testing.assert_array_equal(diff(a), np.zeros(6400, np.float32))
    d = diff(b).reshape(80, 80)
    assert d[0, 0] == -1 and d[1, 1] == 1 and np.abs(d).sum() == 2
    diff.reset()
    np.testing.assert_array_equal(diff(b), np.zeros(6400, np.float32))   # a new episode starts afresh


def test_pong_frame_refuses_other_shapes():
    with pytest.raises(ValueError):
        envs.pong_frame(np.zeros((80, 80), np.uint8))
