"""The untrained agent's first preview (shown when the Play page opens an agent) plays only the
first FIRST_PREVIEW_STEPS steps of its seeded game: a whole untrained Pong game is thousands of
steps and froze the page for about half a minute."""
from __future__ import annotations

import dataclasses

import torch

from karp_models.models import build_for
from karp_models.rl import envs
from karp_models.train import previews
from karp_models.train.tasks import make_task
from karp_models.train.tasks.rl import FIRST_PREVIEW_STEPS, PREVIEW_FRAMES


def _first_preview(env_name: str, kind: str):
    env = envs.ENVS[env_name]
    torch.manual_seed(0)
    model = build_for(kind, env, preset=env_name)
    task = make_task(env, model, kind=kind)
    return previews.make(task, model, torch.device("cpu"), 0)


def test_pong_first_preview_is_capped():
    p = _first_preview("pong", "reinforce")
    assert len(p.actions) == FIRST_PREVIEW_STEPS == len(p.rewards)
    assert p.frames is not None and 0 < len(p.frames) <= min(PREVIEW_FRAMES, FIRST_PREVIEW_STEPS)
    assert p.frames.shape[1:] == (80, 80, 3)


def test_cartpole_first_preview_is_a_whole_short_episode():
    p = _first_preview("cartpole", "dqn")
    assert 0 < len(p.actions) < FIRST_PREVIEW_STEPS        # an untrained pole falls within ~100 steps
