"""The captioning Task: batches of every wording, an evaluation whose scores are checked on models
whose answers are known (one that writes each scene's own caption and looks at its items, one
that writes another scene's, one that looks everywhere), and training through the one Trainer
with live previews."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn as nn

from karp_models.data import scenes
from karp_models.introspect.captions import box_coverage
from karp_models.models import build_for
from karp_models.models.captioning import Decoded
from karp_models.train import previews
from karp_models.train.tasks import ImageCaptioning, make_task
from karp_models.train.trainer import TrainConfig, Trainer


def fake_pool(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 4 + c:24, 6:22 - c] = rng.integers(120, 256)
    return x, y


@pytest.fixture(scope="module")
def data():
    a = scenes.compose_arrays(*fake_pool(seed=0), *fake_pool(seed=1), n_train=256, n_test=40)
    return scenes.caption_data(a, "en", source="fake items")


class Known(nn.Module):
    """Writes the first reference of scene (index + shift) and, for each noun, looks at one grid
    cell: the one its item's boxes cover most ('item'), one they do not touch ('away') or all
    cells alike ('uniform')."""

    def __init__(self, data, shift: int = 0, look: str = "item"):
        super().__init__()
        self.data, self.shift, self.look, self.grid = data, shift, look, 8
        self.w = nn.Parameter(torch.zeros(()))

    def _index(self, x: torch.Tensor) -> list[int]:
        ref = self.data.test_x.float() / 255
        return [int((ref == row).flatten(1).all(1).nonzero()[0]) for row in x]

    def forward_with_attention(self, x, caps):
        B, T = caps.shape
        V = self.data.vocab_size
        logits = torch.full((B, T, V), -20.0).scatter(2, caps[..., None], 20.0)
        alphas = torch.full((B, T, 64), 1 / 64)
        for b, i in enumerate(self._index(x)):
            for t, tok in enumerate(caps[b].tolist()):
                c = self.data.noun_class[tok]
                if c < 0 or self.look == "uniform":
                    continue
                cls = self.data.classes["test"][i].numpy()
                cov = box_coverage(self.data.boxes["test"][i].numpy()[cls == c], 64, 8).reshape(-1)
                alphas[b, t] = 0
                alphas[b, t, int(cov.argmax() if self.look == "item" else cov.argmin())] = 1
        return logits, alphas

    def greedy(self, x):
        n = len(self.data.test_x)
        rows = [self.data.test_refs[(i + self.shift) % n, 0] for i in self._index(x)]
        return Decoded(torch.stack(rows), torch.ones(len(rows), rows[0].numel()), None, None)


def test_batches_draw_every_wording_and_end_in_eos(data):
    task = ImageCaptioning(data)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(8):
        x, caps = task.batch("train", 32, g)
        assert x.shape == (32, 1, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        assert caps.dtype == torch.int64 and (caps[:, -1] != 0).any()          # trimmed to the longest
        assert ((caps == data.EOS).sum(1) == 1).all()
        for row in caps:
            seen.add(tuple(row[row != 0].tolist()))
    assert len(seen) > 150                                                    # 256 scenes x up to 8 wordings
    assert task.items_per_epoch == 256 and task.eval_split == "test"


def test_scores_of_a_model_that_knows_the_answers(data):
    task = ImageCaptioning(data)
    m = task.evaluate(Known(data), batch_size=16)
    assert m["loss"] < 1e-6
    assert m["bleu4"] == pytest.approx(1.0) and m["accuracy"] == 1.0 and m["items_match"] == 1.0
    assert m["novel_accuracy"] == 1.0 and m["cider"] > 2
    assert m["attention_on_item"] > 0.6 > 0.2 > m["attention_chance"]
    away = task.evaluate(Known(data, look="away"), batch_size=16)
    assert away["attention_on_item"] == 0.0
    flat = task.evaluate(Known(data, look="uniform"), batch_size=16)
    assert flat["attention_on_item"] == pytest.approx(flat["attention_chance"])
    assert flat["attention_chance"] == pytest.approx(m["attention_chance"])


def test_scores_of_a_model_that_describes_another_scene(data):
    task = ImageCaptioning(data)
    m = task.evaluate(Known(data, shift=1), batch_size=16)
    right = task.evaluate(Known(data), batch_size=16)
    assert m["accuracy"] < 0.15 and m["items_match"] < 0.3 and m["bleu4"] < 0.5 * right["bleu4"]
    assert m["cider"] < 0.3 * right["cider"]
    sub = task.evaluate(Known(data), max_batches=1, batch_size=8)              # interval evaluation: a subset
    assert sub["accuracy"] == 1.0


def test_training_through_the_trainer_with_previews(data):
    model = build_for("caption-attention", data, preset="tiny")
    task = make_task(data, model, kind="caption")
    assert isinstance(task, ImageCaptioning)
    cfg = TrainConfig(steps=12, batch_size=16, lr=3e-3, eval_every=6, eval_batches=1)
    tr = Trainer(model, task, cfg)
    recs = list(tr.run(log_every=6))
    assert recs[0].val_loss is not None and "val_bleu4" in recs[0].scalars
    assert recs[-1].final and recs[-1].val_loss < recs[0].train_loss and recs[-1].val_accuracy is not None
    assert {"val_cider", "val_items_match", "val_attention_on_item"} <= set(recs[-1].scalars)
    again = task.evaluate(model)                                               # deterministic
    assert again == task.evaluate(model)
    p = previews.make(task, model, torch.device("cpu"), 12)
    assert isinstance(p, previews.Captions) and p.images.shape == (6, 1, 64, 64)
    assert len(p.words) == 6 and len(p.correct) == 6 and p.references[0] == data.text(data.references("test", 0)[0])
    assert p.attention.shape[0] == 6 and p.attention.shape[2:] == (model.grid, model.grid) == (16, 16)
    assert all(len(pr) == min(len(w) + 1, p.attention.shape[1]) for w, pr in zip(p.words, p.probs))
    assert np.allclose(p.attention.sum((2, 3)), 1, atol=1e-5)
    assert task.meta()["language"] == "en" and task.meta()["vocab"][:3] == ["<pad>", "<s>", "</s>"]


def test_the_task_state_resumes_the_epoch(data):
    a, b = ImageCaptioning(data), ImageCaptioning(data)
    g = torch.Generator().manual_seed(1)
    a.batch("train", 32, g)
    b.load_state_dict(a.state_dict())
    state = g.get_state()
    xa, ca = a.batch("train", 32, g)
    g.set_state(state)
    xb, cb = b.batch("train", 32, g)
    assert torch.equal(xa, xb) and torch.equal(ca, cb)


def test_the_no_attention_model_has_no_localisation(data):
    model = build_for("caption-lstm", data, preset="tiny")
    m = ImageCaptioning(data).evaluate(model)
    assert "attention_on_item" not in m and 0 <= m["bleu4"] <= 1 and m["loss"] > 0
    p = previews.make(ImageCaptioning(data), model, torch.device("cpu"), 0)
    assert p.attention is None
