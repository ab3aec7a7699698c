"""Training the date translator live: a step-budgeted loop that yields frozen records, with the
alignment of one fixed example snapshotted as it sharpens, and held-out exact-match accuracy.

Like train/trainer.py (minGPT's trainer: the loop knows nothing of the UI), but for one small
task whose data is generated, so it stays beside it instead of inside the image/text trainer.
A `LiveRun` keeps the model, optimizer and data stream, so a run interrupted by a page rerun
continues where it stopped. Nothing here imports streamlit.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from karp_models.data import dates
from karp_models.models.seq2seq import PRESETS, Seq2Seq

DEFAULT_EXAMPLE = "Wednesday, March 3rd 2021"

# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 300              # the budget one "Train" press spends (95% held-out exact match by ~200)
    batch_size: int = 64
    lr: float = 3e-3
    min_lr_frac: float = 0.1      # cosine decay over `steps` down to lr * min_lr_frac
    clip: float = 1.0
    seed: int = 0
    log_every: int = 10           # a record with the mean training loss every this many steps
    snapshot_every: int = 20      # the fixed example's alignment every this many steps
    eval_every: int = 50          # held-out exact match every this many steps (and at the end)
    n_val: int = 400


@dataclass(frozen=True)
class Translation:
    source: str                   # what the model read (normalised), one character per column
    output: str                   # what it wrote, without </s>
    alignment: np.ndarray         # (len(output) + 1, len(source)): rows are output steps incl. </s>

    @property
    def out_chars(self) -> list[str]:
        return [*self.output, "</s>"][:self.alignment.shape[0]]


@dataclass(frozen=True)
class Record:
    step: int
    elapsed_s: float              # training seconds (excludes evaluation)
    train_loss: float             # mean over the last log_every steps
    lr: float
    val_exact: float | None = None        # fraction of held-out dates translated exactly
    snapshot: Translation | None = None   # the fixed example at this step
    final: bool = False

# ---------------------------------------------------------------------------- helpers


def build_model(preset: str = "dates", seed: int = 0, **overrides) -> Seq2Seq:
    """A fresh model sized for the dates vocabularies."""
    torch.manual_seed(seed)
    cfg = replace(PRESETS[preset], src_vocab=len(dates.SRC), tgt_vocab=len(dates.TGT),
                  pad=dates.TGT.pad, bos=dates.TGT.bos, eos=dates.TGT.eos,
                  max_len=dates.TGT_LEN + 2, **overrides)
    return Seq2Seq(cfg)


@torch.no_grad()
def translate(model: Seq2Seq, text: str) -> Translation:
    """Greedy translation of one date and the alignment it used. Every answer has 10 characters,
    so </s> may only come after 10 (an untrained model then still writes a row per character)."""
    was = model.training
    model.eval()
    src = dates.encode_source(text) or [dates.SRC.unk]
    tokens, alpha = model.greedy_decode(torch.tensor([src]), min_len=dates.TGT_LEN)
    model.train(was)
    out = dates.decode_target(tokens[0].tolist())
    n = len(out) + 1 if len(out) < tokens.size(1) else len(out)     # + the </s> step when it came
    return Translation(source=dates.SRC.decode(src), output=out, alignment=alpha[0, :n].numpy().copy())


@torch.no_grad()
def exact_match(model: Seq2Seq, pairs: list[tuple[str, str]], batch_size: int = 500) -> float:
    """Fraction of (human, ISO) pairs whose greedy translation equals the ISO date exactly."""
    was = model.training
    model.eval()
    right = 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        src, _ = dates.batch(chunk)
        tokens, _ = model.greedy_decode(src, min_len=dates.TGT_LEN)
        right += sum(dates.decode_target(t.tolist()) == iso for t, (_, iso) in zip(tokens, chunk))
    model.train(was)
    return right / max(1, len(pairs))

# ---------------------------------------------------------------------------- the loop


class LiveRun:
    """A model being trained in budgets: `for rec in run.train(steps): ...` continues where the
    last call stopped (model, Adam state, data stream and records are kept)."""

    def __init__(self, settings: TrainSettings = TrainSettings(), preset: str = "dates",
                 example: str = DEFAULT_EXAMPLE, **overrides) -> None:
        self.settings = s = settings
        self.model = build_model(preset, s.seed, **overrides)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=s.lr)
        self.next_batch = dates.batches(s.batch_size, seed=s.seed, split="train")
        self.val_pairs = dates.examples(s.n_val, seed=s.seed, split="val")
        self.example = example
        self.step = 0
        self.elapsed_s = 0.0
        self.records: list[Record] = []
        self.first = translate(self.model, example)       # the untrained alignment, for comparison

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def lr_at(self, step: int) -> float:
        """Cosine from lr to lr * min_lr_frac over the budget, then flat (a resumed run stays low)."""
        s = self.settings
        p = min(1.0, step / max(1, s.steps))
        return s.lr * (s.min_lr_frac + (1 - s.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    def train(self, steps: int | None = None, *, seconds: float | None = None,
              stop: Callable[[], bool] | None = None) -> Iterator[Record]:
        """Train `steps` more steps (default: the settings' budget) or until `seconds` of training
        or `stop()`; yields a Record every log_every steps and a final one with val_exact."""
        s = self.settings
        end = self.step + (steps if steps is not None else s.steps)
        losses: list[torch.Tensor] = []
        t_start = self.elapsed_s
        self.model.train()
        while self.step < end:
            if (seconds is not None and self.elapsed_s - t_start >= seconds) or (stop and stop()):
                break
            t0 = time.perf_counter()
            lr = self.lr_at(self.step)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            src, tgt = self.next_batch()
            _, loss = self.model(src, tgt)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.clip)
            self.optimizer.step()
            self.step += 1
            losses.append(loss.detach())
            self.elapsed_s += time.perf_counter() - t0
            if self.step % s.log_every == 0 or self.step == end:
                rec = Record(step=self.step, elapsed_s=self.elapsed_s,
                             train_loss=float(torch.stack(losses).mean()), lr=lr,
                             val_exact=(exact_match(self.model, self.val_pairs)
                                        if self.step % s.eval_every == 0 else None),
                             snapshot=(translate(self.model, self.example)
                                       if self.step % s.snapshot_every == 0 else None))
                losses = []
                self.records.append(rec)
                yield rec
        last = self.records[-1] if self.records else None
        final = Record(step=self.step, elapsed_s=self.elapsed_s,
                       train_loss=last.train_loss if last else float("nan"), lr=self.lr_at(self.step),
                       val_exact=exact_match(self.model, self.val_pairs),
                       snapshot=translate(self.model, self.example), final=True)
        self.records.append(final)
        yield final

    @property
    def last_val(self) -> Record | None:
        return next((r for r in reversed(self.records) if r.val_exact is not None), None)

    @property
    def last_snapshot(self) -> Translation:
        return next((r.snapshot for r in reversed(self.records) if r.snapshot is not None), self.first)
