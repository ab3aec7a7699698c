"""Karpathy's recipe checks (issue 24 part 4) against hand computations: ln C, the update/weight ratio of
plain SGD (lr * |g| / |w|), a one-batch overfit through the Trainer, and a learning rate that blows up."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from train_helpers import TinyNet, TinyNetConfig, quadrant_images

from karp_models.train import recipe
from karp_models.train.tasks.images import ImageClassification
from karp_models.train.trainer import TrainConfig, Trainer


def test_expected_initial_loss_is_ln_c_the_entropy_of_a_uniform_guess():
    for C in (2, 10, 65):
        uniform = F.cross_entropy(torch.zeros(3, C), torch.tensor([0, 1, C - 1]))
        assert recipe.expected_initial_loss(C) == pytest.approx(float(uniform))
    assert recipe.expected_initial_loss(10) == pytest.approx(2.302585, abs=1e-6)
    with pytest.raises(ValueError):
        recipe.expected_initial_loss(0)
    assert recipe.n_outputs(quadrant_images()) == 4


def test_update_ratio_of_plain_sgd_is_lr_times_gradient_over_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    w0 = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    with recipe.watch_updates(model, {"model": opt}) as stats:
        F.cross_entropy(model(x), y).backward()
        g = [model[0].weight.grad.clone(), model[2].weight.grad.clone()]
        opt.step()
    assert stats.names == ["0.weight", "2.weight"]                 # matrices only, no biases
    assert stats.grad_norm[0] == pytest.approx([float(gi.norm()) for gi in g], rel=1e-6)
    hand = [0.1 * float(gi.norm()) / float(wi.norm()) for gi, wi in zip(g, w0)]
    assert stats.update_ratio[0] == pytest.approx(hand, rel=1e-5)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()                                                      # after the block: no hook left
    assert len(stats.update_ratio) == 1


def test_one_batch_gives_the_same_batch_every_step_and_scores_it():
    task = ImageClassification(quadrant_images(), augment=True)
    one = recipe.OneBatch(task, 8, "cpu", seed=3)
    a = one.batch("train", 64, torch.Generator(), "cpu")
    b = one.batch("train", 64, torch.Generator().manual_seed(9), "cpu")
    assert a[0] is b[0] and a[0].shape[0] == 8
    model = TinyNet(TinyNetConfig()).eval()
    with torch.no_grad():
        hand = float(F.cross_entropy(model(a[0])[0], a[1]))
    assert one.evaluate(model)["loss"] == pytest.approx(hand)


def test_recipe_checks_on_a_fresh_network_start_at_ln_c_and_overfit_one_batch():
    torch.manual_seed(0)
    data = quadrant_images()
    model = TinyNet(TinyNetConfig(dropout=0.0))
    r = recipe.recipe_checks(model, ImageClassification(data, augment=False), data, steps=40, batch_size=8, lr=1e-2)
    assert r.expected == pytest.approx(math.log(4))
    assert r.initial_ok and abs(r.initial - math.log(4)) < 0.3
    assert len(r.losses) == 40 and len(r.stats.update_ratio) == 40 and len(r.stats.grad_norm) == 40
    assert r.overfits and r.losses[-1] < 0.05
    assert r.median_ratios().shape == (len(r.stats.names),) and (r.median_ratios() > 0).all()


def test_a_recipe_flags_a_last_layer_that_starts_too_sure():
    torch.manual_seed(0)
    data = quadrant_images()
    model = TinyNet(TinyNetConfig(dropout=0.0))
    with torch.no_grad():
        model.head.weight.mul_(200)                                  # confident and wrong from step 0
    r = recipe.recipe_checks(model, ImageClassification(data, augment=False), data, steps=2, batch_size=8)
    assert r.initial > 3 * math.log(4) and r.initial_ok is False


def test_loss_goes_down_reads_a_run_as_a_person_would():
    assert recipe.loss_goes_down([2.3, 2.0, 1.5, 1.0, 0.8])
    assert not recipe.loss_goes_down([2.3, 2.4, 2.2, 2.3, 2.25])   # no real fall
    assert not recipe.loss_goes_down([2.3, 50.0, math.inf])         # blew up
    assert not recipe.loss_goes_down([])


def test_run_losses_end_with_inf_when_the_learning_rate_blows_up():
    torch.manual_seed(0)
    data = quadrant_images()
    task = recipe.QuickEval(ImageClassification(data, augment=False), max_batches=1)
    cfg = TrainConfig(steps=30, batch_size=16, lr=1e6, optimizer="sgd", schedule="constant", grad_clip=0.0,
                      weight_decay=0.0, eval_every=0, amp=False, augment=False)
    losses = recipe.run_losses(Trainer(TinyNet(TinyNetConfig(dropout=0.0)), task, cfg))
    assert losses[-1] == math.inf and not recipe.loss_goes_down(losses)
    cfg_ok = TrainConfig(**{**cfg.__dict__, "lr": 0.05})
    good = recipe.run_losses(Trainer(TinyNet(TinyNetConfig(dropout=0.0)), task, cfg_ok))
    assert len(good) == 30 and np.isfinite(good).all() and recipe.loss_goes_down(good)
