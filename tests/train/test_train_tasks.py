"""Tasks: batch shapes and ranges, epochs, augmentation, char windows, exact evaluation."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.train.tasks import CharLM, ImageClassification, make_task
from karp_models.train.trainer import TrainConfig
from train_helpers import (TinyLM, TinyLMConfig, TinyNet, TinyNetConfig, cyclic_text, id_images,
                           quadrant_images)

# --- images


def test_image_batch_shapes_dtypes_and_range():
    task = ImageClassification(quadrant_images(), augment=True)
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        x, y = task.batch(split, 32, g, "cpu")
        assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32
        assert y.shape == (32,) and y.dtype == torch.int64
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert task.unit == "samples" and task.items_per_epoch == 512


def test_each_epoch_is_a_permutation():
    task = ImageClassification(id_images(n=64), augment=False)
    g = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(2):
        seen = torch.cat([task.batch("train", 16, g)[1] for _ in range(4)])
        assert sorted(seen.tolist()) == list(range(64))  # every sample exactly once
        epochs.append(seen)
    assert not torch.equal(epochs[0], epochs[1])  # a new order each epoch


def _shifted_versions(img: torch.Tensor, pad: int) -> list[torch.Tensor]:
    C, H, W = img.shape
    padded = F.pad(img, (pad, pad, pad, pad))
    r = range(2 * pad + 1)
    return [padded[:, dy:dy + H, dx:dx + W] for dy in r for dx in r]


@pytest.mark.parametrize("flip_ok", [False, True])
def test_augmentation_shifts_and_flips_only_when_allowed(flip_ok):
    data = id_images(n=64, flip_ok=flip_ok)
    task = ImageClassification(data, augment=True)
    g = torch.Generator().manual_seed(0)
    x, y = task.batch("train", 64, g)
    assert x.shape == (64, 3, 8, 8) and task.pad == 1
    n_flipped = n_moved = 0
    for img, i in zip(x, y):
        orig = data.train_x[i].float() / 255
        plain = any(torch.equal(img, s) for s in _shifted_versions(orig, task.pad))
        mirrored = any(torch.equal(img, s) for s in _shifted_versions(orig.flip(-1), task.pad))
        assert plain or mirrored
        if not flip_ok:
            assert plain  # never a mirror image when a flip would change the label
        n_flipped += mirrored and not plain
        n_moved += not torch.equal(img, orig)
    assert n_moved > 32  # most images are shifted
    assert (n_flipped > 10) == flip_ok


def test_augment_off_and_eval_splits_are_untouched():
    data = id_images(n=64, flip_ok=True)
    g = torch.Generator().manual_seed(0)
    for task, augment in ((ImageClassification(data, augment=False), True),
                          (ImageClassification(data, augment=True), False)):
        x, y = task.batch("train", 64, g, augment=augment)
        assert torch.equal(x, data.train_x[y].float() / 255)
    x, y = ImageClassification(data, augment=True).batch("test", 64, g)
    assert torch.equal(x, data.test_x[y].float() / 255)


def test_image_evaluate_is_exact_and_deterministic_and_restores_mode():
    data = quadrant_images()
    task = ImageClassification(data)
    torch.manual_seed(0)
    model = TinyNet(TinyNetConfig())
    model.train()
    a = task.evaluate(model, "cpu", batch_size=100)
    b = task.evaluate(model, "cpu", batch_size=64)
    assert model.training
    model.eval()
    with torch.no_grad():
        logits, _ = model(data.test_x.float() / 255)
    ref_loss = F.cross_entropy(logits, data.test_y).item()
    ref_acc = (logits.argmax(-1) == data.test_y).float().mean().item()
    assert a["loss"] == pytest.approx(ref_loss, abs=1e-5)
    assert a["accuracy"] == pytest.approx(ref_acc)
    assert b["loss"] == pytest.approx(a["loss"], abs=1e-6) and b["accuracy"] == a["accuracy"]
    s1 = task.evaluate(model, "cpu", max_batches=2, batch_size=50)
    s2 = task.evaluate(model, "cpu", max_batches=2, batch_size=50)
    assert s1 == s2 and s1 != a  # a fixed subset of 100, the same every time


# --- text


def test_char_windows_are_shifted_by_one():
    data = cyclic_text()
    task = CharLM(data, block_size=8)
    g = torch.Generator().manual_seed(0)
    x, y = task.batch("train", 16, g)
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    ids = data.train_ids
    for row, nxt in zip(x, y):  # each row is a real window of the text
        starts = [i for i in range(len(ids) - 8) if torch.equal(ids[i:i + 8], row)
                  and torch.equal(ids[i + 1:i + 9], nxt)]
        assert starts
    assert task.unit == "tokens" and task.items_per_batch(16) == 128
    assert task.items_per_epoch == 2000


def test_char_full_evaluation_is_the_exact_mean_over_the_split():
    data = cyclic_text(n_val=501)  # 500 targets: 62 windows of 8 and a tail of 4
    task = CharLM(data, block_size=8)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig())  # context-free, so the exact value is a bigram sum
    full = task.evaluate(model, "cpu", batch_size=7)
    with torch.no_grad():
        logits, _ = model(data.val_ids[None, :-1])
    target = data.val_ids[1:]
    ref = F.cross_entropy(logits[0], target).item()
    ref_acc = (logits[0].argmax(-1) == target).double().mean().item()
    assert full["loss"] == pytest.approx(ref, rel=1e-6)  # float32 sums in another order
    assert full["accuracy"] == pytest.approx(ref_acc, abs=1e-9)
    assert task.evaluate(model, "cpu") == task.evaluate(model, "cpu", split="val")
    sub1 = task.evaluate(model, "cpu", max_batches=2, batch_size=5)
    assert sub1 == task.evaluate(model, "cpu", max_batches=2, batch_size=5)


def test_make_task_picks_by_duck_typing():
    img = make_task(quadrant_images(), TinyNet(TinyNetConfig()), augment=False)
    assert isinstance(img, ImageClassification) and not img.augment
    txt = make_task(cyclic_text(), TinyLM(TinyLMConfig(block_size=5)))
    assert isinstance(txt, CharLM) and txt.block_size == 5
    with pytest.raises(ValueError, match="split"):
        img.batch("nope", 4, torch.Generator())


def test_shift_sets_the_augmentation_range_and_zero_leaves_only_flips():
    data = id_images(n=64, flip_ok=True)
    g = torch.Generator().manual_seed(0)
    flips_only = make_task(data, TinyNet(TinyNetConfig()), shift=0)
    x, y = flips_only.batch("train", 64, g)
    mirrored = 0
    for img, i in zip(x, y):
        orig = data.train_x[i].float() / 255
        assert torch.equal(img, orig) or torch.equal(img, orig.flip(-1))
        mirrored += not torch.equal(img, orig)
    assert mirrored > 10
    wide = make_task(data, TinyNet(TinyNetConfig()), shift=2)
    x, y = wide.batch("train", 64, g)
    assert wide.pad == 2
    far = 0
    for img, i in zip(x, y):
        orig = data.train_x[i].float() / 255
        versions = _shifted_versions(orig, 2) + _shifted_versions(orig.flip(-1), 2)
        assert any(torch.equal(img, s) for s in versions)
        far += not any(torch.equal(img, s) for s in _shifted_versions(orig, 1) + _shifted_versions(orig.flip(-1), 1))
    assert far > 10  # shifted by 2 pixels, beyond the default of 1 for 8x8 images
    with pytest.raises(ValueError, match="shift"):
        TrainConfig(steps=1, shift=-1)


# --- augmentation toggles and adversarial training (issue 22)


def test_each_augmentation_off_is_the_identity_and_on_changes_the_batch():
    from karp_models.train.tasks.images import augmentation_examples

    data = id_images(n=64, flip_ok=True)
    for kw in (dict(augment=False), dict(shift=0, flip=False)):          # all off, or each one off
        x0, x1, _y = augmentation_examples(data, 32, seed=3, **kw)
        assert torch.equal(x0, x1)
    x0, x1, y = augmentation_examples(data, 32, seed=3, shift=0)         # flips only
    assert torch.equal(x0, data.train_x[y].float() / 255)                 # the stored images
    mirrored = [not torch.equal(a, b) for a, b in zip(x0, x1)]
    assert all(torch.equal(b, a.flip(-1)) for a, b, m in zip(x0, x1, mirrored) if m) and sum(mirrored) > 5
    x0, x1, y = augmentation_examples(data, 32, seed=3, flip=False)      # shifts only: never a mirror
    for a, b in zip(x0, x1):
        assert any(torch.equal(b, s) for s in _shifted_versions(a, 1))
    assert sum(not torch.equal(a, b) for a, b in zip(x0, x1)) > 16


class _Recorder(nn.Module):
    """A model that remembers the inputs of its forwards."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x, targets=None):
        self.seen.append(x.detach().clone())
        return self.model(x, targets)


def test_adversarial_training_step_trains_on_a_pgd_batch_within_eps():
    data = quadrant_images()
    task = ImageClassification(data, augment=False)
    torch.manual_seed(0)
    model = _Recorder(TinyNet(TinyNetConfig(dropout=0.0)))
    x, y = task.batch("train", 64, torch.Generator().manual_seed(0))
    cfg = TrainConfig(steps=1, adv_eps=0.05, adv_steps=3)
    loss = task.training_step(model, (x, y), SimpleNamespace(cfg=cfg))
    assert len(model.seen) == 3 + 1                              # three attack steps, then the loss
    x_adv = model.seen[-1]
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.04                        # really perturbed, to the edge of the ball
    assert all(p.grad is None for p in model.parameters())       # the attack leaves no gradients behind
    ref = F.cross_entropy(model.model(x_adv)[0], y)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)     # the loss is the attacked batch's
    with pytest.raises(ValueError, match="adv_eps"):
        TrainConfig(steps=1, adv_eps=-0.1)


def test_a_robust_task_measures_and_records_its_attack():
    data = quadrant_images()
    robust = {"epsilon": 0.1, "steps": 5, "step_size": 0.05, "items": 100}
    task = make_task(data, TinyNet(TinyNetConfig()), robust=robust)
    torch.manual_seed(0)
    model = TinyNet(TinyNetConfig(in_channels=1, n_classes=4))
    r = task.evaluate_robust(model, "cpu")
    assert set(r) == {"robust_accuracy"} and 0 <= r["robust_accuracy"] <= 1
    assert task.evaluate_robust(model, "cpu") == r                          # deterministic
    assert task.meta()["robust"] == {"attack": "PGD", "norm": "Linf", **robust}
    assert make_task(data, TinyNet(TinyNetConfig())).evaluate_robust(model, "cpu") == {}


def test_distillation_with_adversarial_training_attacks_the_student_and_shows_the_teacher_the_attack():
    from karp_models.train.tasks import Distillation

    data = quadrant_images()
    torch.manual_seed(0)
    teacher = _Recorder(TinyNet(TinyNetConfig(dropout=0.0)))
    student = _Recorder(TinyNet(TinyNetConfig(dropout=0.0)))
    task = Distillation(ImageClassification(data, augment=False), teacher)
    x, y = task.batch("train", 32, torch.Generator().manual_seed(0))
    task.training_step(student, (x, y), SimpleNamespace(cfg=TrainConfig(steps=1, adv_eps=0.05, adv_steps=2)))
    assert len(student.seen) == 3 and torch.equal(teacher.seen[-1], student.seen[-1])
    assert 0 < (student.seen[-1] - x).abs().max() <= 0.05 + 1e-6
