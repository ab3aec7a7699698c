"""The RL page's figures: which steps of an episode the action chart marks as points."""
from __future__ import annotations

import numpy as np

from karp_models.ui.figures import rl as figs


def _marks(fig):
    return [t for t in fig.data if t.mode == "markers"]


def test_pong_points_won_and_lost_are_both_marked():
    rewards = np.zeros(40)
    rewards[[5, 30]] = -1.0                     # two points lost
    rewards[17] = 1.0                           # one point won
    probs = np.full((40, 2), 0.5)
    marks = _marks(figs.actions_figure(probs, None, rewards, ["UP", "DOWN"]))
    assert len(marks) == 1
    m = marks[0]
    assert list(m.x) == [5, 17, 30]
    assert list(m.marker.symbol) == ["x", "triangle-up", "x"]
    assert list(m.marker.color) == ["#d62728", "#2ca02c", "#d62728"]


def test_cartpole_reward_every_step_marks_nothing():
    rewards = np.ones(25)                       # +1 for every step the pole stays up
    fig = figs.actions_figure(np.full((25, 2), 0.5), None, rewards, ["left", "right"])
    assert _marks(fig) == []
    fig = figs.actions_figure(None, np.linspace(1, 50, 25), rewards, [])
    assert _marks(fig) == []
