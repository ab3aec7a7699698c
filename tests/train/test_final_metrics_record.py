"""final_metrics from the Trainer's final record (what `train` saves without scoring the split a
second time) against the metrics scored again from the model."""

import pytest
import torch

from karp_models.data.base import TextData
from karp_models.models import build
from karp_models.train.tasks import final_metrics, make_task
from karp_models.train.trainer import TrainConfig, Trainer


def test_final_record_stands_in_for_a_second_evaluation():
    text = "the quick brown fox jumps over the lazy dog. " * 60
    vocab = tuple(sorted(set(text)))
    ids = torch.tensor([vocab.index(c) for c in text])
    ds = TextData(name="fox", vocab=vocab, train_ids=ids[:2000], val_ids=ids[2000:], source="test", note="")
    model = build("gpt", preset="nano", vocab_size=ds.vocab_size, block_size=16)
    task = make_task(ds, model)
    trainer = Trainer(model, task, TrainConfig(steps=6, batch_size=8, eval_every=3, eval_batches=2))
    records = list(trainer.run())
    assert records[-1].final
    from_record = final_metrics(task, model, "cpu", records[-1])
    again = final_metrics(task, model, "cpu")
    assert from_record.keys() == again.keys() == {"val_loss", "val_accuracy"}
    for k in again:
        assert from_record[k] == pytest.approx(again[k], abs=1e-6)
    # an interval record (a subset) is not taken for the whole split
    assert final_metrics(task, model, "cpu", records[0]) == again
    assert not records[0].final and torch.is_grad_enabled()
