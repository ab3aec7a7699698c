"""REINFORCE and DQN as Tasks on the one Trainer: the policy-gradient loss against a hand
computation with torch.distributions, rollouts that add up, reproducible runs, seeded evaluation,
the DQN loss against its target network, and the CLI's train -> eval round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from karp_models import cli
from karp_models.models import build, build_for
from karp_models.rl import envs
from karp_models.rl.replay import dqn_target
from karp_models.train.tasks import make_task
from karp_models.train.tasks.rl import DQN, Reinforce
from karp_models.train.trainer import StepContext, TrainConfig, Trainer

CFG = TrainConfig(steps=3, batch_size=2, lr=1e-2, schedule="constant", warmup=0.0, grad_clip=0.0,
                  eval_every=0, seed=0)


def policy(seed: int = 0):
    torch.manual_seed(seed)
    return build_for("reinforce", envs.CARTPOLE, preset="tiny")


def test_policy_log_prob_is_bernoulli_for_two_actions():
    m = policy()
    x, a = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    logits, _ = m(x)
    ref = torch.distributions.Bernoulli(logits=logits[:, 0]).log_prob(a.float())
    torch.testing.assert_close(m.log_prob(logits, a), ref)
    torch.testing.assert_close(m.probs(x).sum(-1), torch.ones(5))


def test_reinforce_loss_is_minus_mean_of_log_prob_times_advantage():
    m = policy()
    task = Reinforce(envs.CARTPOLE, m)
    task.running = 10.0
    obs, act = torch.randn(4, 4), torch.tensor([1, 0, 0, 1])
    adv = torch.tensor([1.0, -0.5, 0.25, -0.75])
    out = task.training_step(m, {"obs": obs, "actions": act, "advantages": adv, "totals": [3.0, 5.0],
                                 "length": 2.0}, None)
    p1 = torch.sigmoid(m(obs)[0][:, 0])                                   # P(push right)
    logp = torch.where(act == 1, p1.log(), (1 - p1).log())
    torch.testing.assert_close(out["loss"], -(logp * adv).mean())
    assert float(out["episode_reward"]) == 4.0 and float(out["running_reward"]) == 10.0


def test_a_batch_is_whole_episodes_with_centred_advantages():
    m = policy()
    task = Reinforce(envs.CARTPOLE, m)
    b = task.batch("train", 3, torch.Generator().manual_seed(0))
    n = len(b["actions"])
    assert b["obs"].shape == (n, 4) and len(b["totals"]) == 3
    assert sum(b["totals"]) == n                  # CartPole pays 1 a step: the steps are the rewards
    assert abs(float(b["advantages"].mean())) < 1e-5
    assert task.last is not None and task.last.frames.shape == (len(task.last), 4)


def test_the_trainer_runs_reinforce_reproducibly():
    def run():
        m = policy()
        t = Trainer(m, make_task(envs.CARTPOLE, m, kind="reinforce"), CFG)
        recs = list(t.run(log_every=1))
        return m, recs
    (m1, r1), (m2, r2) = run(), run()
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q)
    assert r1[-1].final and {"episode_reward", "running_reward"} <= set(r1[0].scalars)
    assert [r.scalars["episode_reward"] for r in r1] == [r.scalars["episode_reward"] for r in r2]
    assert r1[-1].scalars["val_mean_return"] == -r1[-1].val_loss          # loss: the negative mean reward


def test_evaluation_plays_the_same_seeded_episodes():
    m = policy()
    task = Reinforce(envs.CARTPOLE, m)
    a, b = task.evaluate(m, max_batches=3), task.evaluate(m, max_batches=3)
    assert a == b and a["episodes"] == 3 and a["mean_length"] == a["mean_return"]


def test_dqn_loss_is_huber_against_the_frozen_target():
    torch.manual_seed(0)
    m = build("dqn", preset="tiny")
    task = DQN(envs.CARTPOLE, m)
    task.learn_start = 20
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    ctx = StepContext(CFG, {"q": opt}, None, torch.device("cpu"))
    batch = task.batch("train", 8, g)
    s, a, r, s2, d = batch
    frozen = [p.detach().clone() for p in m.parameters()]
    out = task.training_step(m, batch, ctx)
    q = m(s)[0].gather(1, a[:, None])[:, 0]
    target = r + 0.99 * (1 - d) * task.target(s2)[0].max(-1).values
    torch.testing.assert_close(out["loss"], F.smooth_l1_loss(q, target))
    torch.testing.assert_close(dqn_target(r, d, task.target(s2)[0], 0.99), target)
    ctx.step("q", out["loss"])
    assert any(not torch.equal(p, f) for p, f in zip(m.parameters(), frozen))          # online moved
    assert all(torch.equal(p, f) for p, f in zip(task.target.parameters(), frozen))   # target did not
    task.updates = task.target_every                                   # time to copy again
    task.training_step(m, task.batch("train", 8, g), ctx)
    assert all(torch.equal(p, q) for p, q in zip(task.target.parameters(), m.parameters()))


def test_dqn_refuses_pixels_and_explores_less_over_time():
    with pytest.raises(ValueError, match="pixels"):
        DQN(envs.PONG, build("dqn", preset="tiny"))
    task = DQN(envs.CARTPOLE, build("dqn", preset="tiny"))
    assert task.epsilon() == 1.0
    task.env_steps = task.eps_steps
    assert task.epsilon() == pytest.approx(task.eps_end)


def test_cli_trains_and_eval_reproduces_the_seeded_score(tmp_path, capsys):
    out = tmp_path / "agent.safetensors"
    assert cli.main(["train", "--model", "reinforce", "--dataset", "cartpole", "--preset", "tiny",
                     "--steps", "2", "--batch-size", "2", "--eval-every", "0", "--out", str(out)]) == 0
    assert cli.main(["eval", "--weights", str(out)]) == 0
    text = capsys.readouterr().out
    assert "match" in text and "mean reward" in text
