"""Translating dates written the ways people write them into ISO dates, as a Task for the one
Trainer: generated (source, target) batches, teacher-forced loss, greedy exact match, and the
alignment of one fixed example as the live preview.

Cites: Bahdanau, Cho and Bengio 2015 (the alignment matrix as the explanation); the data is
karp_models/data/dates.py (Andrew Ng's "Neural machine translation with attention" exercise).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.data import dates
from karp_models.models.seq2seq import PRESETS, Seq2Seq
from karp_models.train.tasks.base import as_device
from karp_models.train.trainer import TrainConfig, Trainer

DEFAULT_EXAMPLE = "Wednesday, March 3rd 2021"
# the live page's recipe: AdamW at 5e-3, cosine down to a tenth over the budget; with the
# Chinese formats >= 95% of held-out dates exactly right after 150-175 steps of batch 64
# (3e-3 needed 225-300 steps, and missed 95% in 300 on one seed of four)
LIVE = TrainConfig(steps=300, batch_size=64, lr=5e-3, schedule="cosine", warmup=0.0,
                   final_lr=0.1, weight_decay=0.0, grad_clip=1.0, augment=False,
                   eval_every=50, eval_batches=None)

# --- the model and what it writes


def build_model(preset: str = "dates", seed: int = 0, **overrides: Any) -> Seq2Seq:
    """A fresh model sized for the dates vocabularies, initialised from `seed`."""
    torch.manual_seed(seed)
    cfg = replace(PRESETS[preset], src_vocab=len(dates.SRC), tgt_vocab=len(dates.TGT),
                  pad=dates.TGT.pad, bos=dates.TGT.bos, eos=dates.TGT.eos,
                  max_len=dates.TGT_LEN + 2, **overrides)
    return Seq2Seq(cfg)


@dataclass(frozen=True)
class Translation:
    source: str                   # what the model read (normalised), one character per column
    output: str                   # what it wrote, without </s>
    alignment: np.ndarray         # (len(output) + 1, len(source)): rows are output steps incl. </s>
    step: int = 0                 # the training step it was made at (a live preview)

    @property
    def out_chars(self) -> list[str]:
        return [*self.output, "</s>"][:self.alignment.shape[0]]


@torch.no_grad()
def translate(model: Seq2Seq, text: str, step: int = 0) -> Translation:
    """Greedy translation of one date and the alignment it used. Every answer has 10 characters,
    so </s> may only come after 10 (an untrained model then still writes a row per character)."""
    was = model.training
    model.eval()
    src = dates.encode_source(text) or [dates.SRC.unk]
    device = next(model.parameters()).device
    tokens, alpha = model.greedy_decode(torch.tensor([src], device=device), min_len=dates.TGT_LEN)
    model.train(was)
    out = dates.decode_target(tokens[0].tolist())
    n = len(out) + 1 if len(out) < tokens.size(1) else len(out)     # + the </s> step when it came
    return Translation(source=dates.SRC.decode(src), output=out,
                       alignment=alpha[0, :n].cpu().numpy().copy(), step=step)


@torch.no_grad()
def exact_match(model: Seq2Seq, pairs: list[tuple[str, str]], batch_size: int = 500) -> float:
    """Fraction of (human, ISO) pairs whose greedy translation equals the ISO date exactly."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    right = 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        src, _ = dates.batch(chunk)
        tokens, _ = model.greedy_decode(src.to(device), min_len=dates.TGT_LEN)
        right += sum(dates.decode_target(t.tolist()) == iso for t, (_, iso) in zip(tokens, chunk))
    model.train(was)
    return right / max(1, len(pairs))


# --- the task


class DateTranslation:
    """Batches of (source ids (B, S), target ids (B, 11)) from the dates generator; evaluation on
    n_val fixed held-out pairs (dates never generated for training): the teacher-forced loss per
    target character and the share translated exactly (greedy), as 'accuracy'."""

    unit = "samples"
    eval_split = "validation"
    preview_every = 20
    items_per_epoch = (dates.LAST.toordinal() - dates.FIRST.toordinal() + 1) * 9 // 10  # train dates

    def __init__(self, n_val: int = 400, example: str = DEFAULT_EXAMPLE, seed: int = 0):
        self.val_pairs = dates.examples(n_val, seed=seed, split="val")
        self.example = example

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None,
              augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh random pairs drawn with a seed from `generator` (so the run's state is the
        generator's): src (B, S) and tgt (B, 11) int64, padded with 0."""
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        which = "train" if split == "train" else "val"
        src, tgt = dates.batch([dates.random_example(rng, which)[:2] for _ in range(batch_size)])
        device = as_device(device)
        return src.to(device), tgt.to(device)

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                      ctx: Any) -> torch.Tensor:
        src, tgt = batch
        return model(src, tgt)[1]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "validation", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """Loss (nats per target character, teacher forcing) and exact match over the held-out
        pairs (the first max_batches * batch_size of them when max_batches is set)."""
        pairs = self.val_pairs
        if max_batches is not None:
            pairs = pairs[:max(1, max_batches * (batch_size or 64))]
        device = as_device(device)
        was = model.training
        model.eval()
        try:
            src, tgt = dates.batch(pairs)
            logits, _ = model(src.to(device), tgt.to(device))             # (N, T, V)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                   tgt.to(device).reshape(-1), ignore_index=dates.TGT.pad)
        finally:
            model.train(was)
        return {"loss": loss.item(), "accuracy": exact_match(model, pairs)}

    def preview(self, model: nn.Module, device: torch.device, step: int) -> Translation:
        """The fixed example's translation and alignment at this step."""
        return translate(model, self.example, step)

    def meta(self) -> dict[str, Any]:
        return {"source_vocab": dates.SRC.itos, "target_vocab": dates.TGT.itos}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


# --- the live page's run: a Trainer trained in budgets


def live_trainer(cfg: TrainConfig = LIVE, preset: str = "dates", n_val: int = 400, seed: int = 0,
                 device: torch.device | str = "cpu", **overrides: Any) -> Trainer:
    """A fresh model and a Trainer for it on DateTranslation, with no budget used yet."""
    model = build_model(preset, seed, **overrides)
    return Trainer(model, DateTranslation(n_val=n_val, seed=seed), replace(cfg, seed=seed), device)


def extend(trainer: Trainer, steps: int) -> None:
    """Give `trainer` `steps` more steps (the page's "Train N more steps"). While its schedule
    has not run out the budget grows (the cosine stretches); once it has, the new steps hold
    the learning rate it ended with, so a trained model is not shaken by a warm restart."""
    cfg = trainer.cfg
    ended = cfg.steps is not None and trainer.step >= cfg.steps and trainer.step > 0
    if ended and cfg.schedule != "constant":
        cfg = replace(cfg, lr=cfg.lr * trainer.lr_factor(), schedule="constant", warmup=0.0)
    trainer.cfg = replace(cfg, steps=trainer.step + int(steps))
