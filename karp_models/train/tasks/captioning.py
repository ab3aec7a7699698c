"""Image captioning as a Task for the one Trainer: batches of (images, one reference caption each),
teacher-forced cross-entropy per word, and an evaluation that writes captions (greedy) and scores
them: BLEU-4 (sacrebleu), CIDEr-D, whether the caption states the scene (its items, and its items
and relation, read back by the grammar's parser), and where the attention looks for each noun.

Cites: Xu et al. 2015 and Vinyals et al. 2015 for the models (models/captioning.py); the metrics
in introspect/captions.py; COCO's multiple references per image (Chen et al. 2015).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.data.grammar import Layout, parse
from karp_models.introspect.captions import attention_on_boxes, bleu4, box_coverage, cider_d
from karp_models.train import previews
from karp_models.train.tasks.base import Resident, as_device, fixed_subset

PREVIEW_SCENES = 6        # the first test scenes (alternately seen and held-out compositions)


class ImageCaptioning:
    """Batches of (images float (B, C, H, W) in [0, 1], captions int64 (B, T)) from a CaptionData:
    training images in a fresh permutation each epoch, each with one of its references drawn at
    random (so every wording is learnt), trimmed to the longest caption in the batch.

    evaluate() scores the held-out split deterministically: 'loss' is the teacher-forced
    cross-entropy per word of each image's first reference, nats; 'bleu4' and 'cider' score the
    greedy captions against all references. On composed scenes also 'accuracy' (the caption
    reads back to exactly the scene: items, counts and relation), 'items_match' (the same set of
    items), 'novel_accuracy' (accuracy on held-out compositions) and, for a model with
    attention, 'attention_on_item': the mean share of a noun's attention (teacher-forced, at the
    step that writes the noun) on the boxes of its class's items, beside 'attention_chance',
    what a uniform map gets.
    """

    unit = "samples"
    eval_split = "test"
    preview_every = 50          # sample captions every 50 steps: about half a minute on a laptop

    def __init__(self, data: Any):
        self.data = data
        self.splits = {s: Resident(x=data.split(s)[0], refs=data.split(s)[1], nrefs=data.split(s)[2])
                       for s in data.splits}
        self.items_per_epoch = int(data.train_x.shape[0])
        self._order: torch.Tensor | None = None
        self._cursor = 0

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def _split(self, split: str) -> Resident:
        name = {"val": "test", "validation": "test"}.get(split, split)
        if name not in self.splits:
            raise ValueError(f"unknown split {split!r}; captioned images have 'train' and 'test'")
        return self.splits[name]

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None,
              augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        device = as_device(device)
        t = self._split(split).on(device)
        n = t["x"].shape[0]
        if split == "train":
            if batch_size > n:
                raise ValueError(f"batch_size {batch_size} is larger than the split ({n} images)")
            if self._order is None or self._cursor + batch_size > n:
                self._order, self._cursor = torch.randperm(n, generator=generator), 0
            idx = self._order[self._cursor:self._cursor + batch_size]
            self._cursor += batch_size
        else:
            idx = torch.randint(0, n, (batch_size,), generator=generator)
        r = (torch.rand(batch_size, generator=generator) * t["nrefs"][idx].cpu()).long()  # a wording each
        idx, r = idx.to(device), r.to(device)
        caps = t["refs"][idx, r]                                           # (B, L)
        T = int((caps != self.data.PAD).sum(1).max())
        return t["x"][idx].float().div_(255.0), caps[:, :T]

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                      ctx: Any) -> torch.Tensor:
        x, caps = batch
        return model(x, caps)[1]

    # -- evaluation

    def _noun_mass(self, split: str, i: int, caps: np.ndarray, alpha: np.ndarray, grid: int
                   ) -> list[tuple[float, float]]:
        """(attention on the item, chance) for every noun of image i's caption."""
        boxes = self.data.boxes[split][i].numpy()
        classes = self.data.classes[split][i].numpy()
        out = []
        for t, tok in enumerate(caps):
            c = self.data.noun_class[tok] if tok < len(self.data.noun_class) else -1
            if c >= 0 and (classes == c).any():
                cover = box_coverage(boxes[classes == c], self.data.size[0], grid)
                out.append(attention_on_boxes(alpha[t], cover))
        return out

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "test", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """The scores above over the split (all of it when max_batches is None, else a fixed
        seeded subset of max_batches * batch_size images). Deterministic."""
        device = as_device(device)
        split = {"val": "test", "validation": "test"}.get(split, split)
        t = self._split(split).on(device)
        n = t["x"].shape[0]
        bs = batch_size or 250
        idx = torch.arange(n)
        if max_batches is not None and max_batches * bs < n:
            idx = fixed_subset(n, max_batches * bs)
        was = model.training
        model.eval()
        loss_sum, n_words, hyps, masses = 0.0, 0, [], []
        try:
            for chunk in idx.split(bs):
                sel = chunk.to(device)
                x = t["x"][sel].float() / 255.0
                caps = t["refs"][sel, 0]
                caps = caps[:, :int((caps != self.data.PAD).sum(1).max())]  # (B, T)
                logits, alphas = model.forward_with_attention(x, caps)      # (B, T, V), (B, T, L)
                loss_sum += F.cross_entropy(logits.float().flatten(0, 1), caps.flatten(),
                                            ignore_index=self.data.PAD, reduction="sum").item()
                n_words += int((caps != self.data.PAD).sum())
                hyps += [self.data.words(row) for row in model.greedy(x).tokens.cpu()]
                if alphas is not None and self.data.boxes is not None:
                    a, c = alphas.float().cpu().numpy(), caps.cpu().numpy()
                    for k, i in enumerate(chunk.tolist()):
                        masses += self._noun_mass(split, i, c[k], a[k], model.grid)
        finally:
            model.train(was)
        refs = [self.data.references(split, i) for i in idx.tolist()]
        out = {"loss": loss_sum / max(1, n_words), "bleu4": bleu4(hyps, refs), "cider": cider_d(hyps, refs)[0]}
        if self.data.layouts is not None:
            truth = [Layout.decode(self.data.layouts[split][i].tolist()) for i in idx.tolist()]
            said = [parse(h, self.data.language) for h in hyps]
            right = np.array([s == g for s, g in zip(said, truth)])
            out["accuracy"] = float(right.mean())
            out["items_match"] = float(np.mean([s is not None and s.items() == g.items()
                                                for s, g in zip(said, truth)]))
            if split == "test" and self.data.novel is not None:
                novel = self.data.novel[idx].numpy().astype(bool)
                if novel.any():
                    out["novel_accuracy"] = float(right[novel].mean())
        if masses:
            on, chance = np.array(masses).mean(0)
            out["attention_on_item"], out["attention_chance"] = float(on), float(chance)
        return out

    # -- the live view and the checkpoint

    def preview(self, model: nn.Module, device: torch.device, step: int) -> previews.Captions:
        """Greedy captions of the first test scenes, with each word's probability and attention."""
        return caption_preview(model, self.data, list(range(PREVIEW_SCENES)), device, step)

    def meta(self) -> dict[str, Any]:
        return {"vocab": list(self.data.vocab), "language": self.data.language,
                "item_classes": list(self.data.item_classes)}

    def state_dict(self) -> dict[str, Any]:
        return {"order": self._order, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        order = state.get("order")
        self._order = order.to("cpu", torch.int64) if order is not None else None
        self._cursor = int(state.get("cursor", 0))


@torch.no_grad()
def caption_preview(model: nn.Module, data: Any, indices: list[int], device: torch.device | str,
                    step: int = 0, split: str = "test") -> previews.Captions:
    """Greedy captions of images `indices` of a split: words, each word's probability (the last
    for </s>), attention maps (n, T, g, g) and whether each states its scene."""
    x = data.split(split)[0][indices]
    dec = model.greedy(x.to(device).float() / 255.0)
    T = dec.tokens.size(1)
    words = tuple(tuple(data.words(row)) for row in dec.tokens.cpu())
    probs = tuple(tuple(round(float(p), 4) for p in row[:min(len(w) + 1, T)])
                  for w, row in zip(words, dec.probs.cpu()))
    g = model.grid
    att = dec.alphas.float().cpu().numpy().reshape(len(indices), T, g, g) if dec.alphas is not None else None
    correct = None
    if data.layouts is not None:
        correct = tuple(parse(w, data.language) == Layout.decode(data.layouts[split][i].tolist())
                        for w, i in zip(words, indices))
    return previews.Captions(step=step, images=x.numpy(), words=words, probs=probs, attention=att,
                             references=tuple(data.text(data.references(split, i)[0]) for i in indices),
                             correct=correct, language=data.language)
