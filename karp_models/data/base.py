"""Shared types of karp_models.data: the frozen dataset records, their status and the missing-data error.

Splits are fixed (stored in the record), as in torchvision's `train=True/False` datasets and
nanoGPT's `train.bin` / `val.bin`; statistics are computed on the training split only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

# --- errors


class DatasetMissing(Exception):
    """A dataset is not on this machine; the message says the exact command that gets it."""


# --- status


@dataclass(frozen=True)
class DatasetStatus:
    """Where a dataset comes from, or how to get it, known without loading it or touching the network.

    Attributes:
        name: dataset name, e.g. 'fashion-mnist'.
        kind: 'image' or 'text'.
        available: True if `load(name)` works offline.
        source: where the data comes from, in words (package, folder, number of items).
        how_to_get: exact shell command(s) when missing or when only a subset is present; '' otherwise.
        note: anything a user should know (e.g. 'subset: 5,000 real digits').
        sizes: split name -> number of items (images, or characters for text), when known.
        vocab_size: number of distinct characters, for text datasets when known.
    """

    name: str
    kind: str
    available: bool
    source: str
    how_to_get: str = ""
    note: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    vocab_size: int | None = None


# --- image data


@dataclass(frozen=True, eq=False)
class ImageData:
    """An image classification dataset held in memory with a fixed train/test split.

    The tensors are shared by every caller of `load()` (it caches): treat them as read-only and
    `.clone()` before changing one in place.

    Attributes:
        train_x, test_x: uint8 tensors (N, C, H, W), values 0..255.
        train_y, test_y: int64 tensors (N,), values 0..n_classes-1.
        flip_ok: a horizontal flip keeps the label (True for clothes and CIFAR, False for digits).
        mean, std: per channel, on the [0, 1] scale, from the training split.
    """

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor  # (M, C, H, W) uint8
    test_y: torch.Tensor  # (M,) int64
    source: str
    note: str
    flip_ok: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    splits = ("train", "test")

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of split 'train' or 'test'."""
        if name == "train":
            return self.train_x, self.train_y
        if name == "test":
            return self.test_x, self.test_y
        raise ValueError(f"{self.name} has splits {self.splits}, not {name!r}")

    def __repr__(self) -> str:
        C, (H, W) = self.channels, self.size
        return (f"ImageData({self.name!r}, {len(self.train_y):,} train / {len(self.test_y):,} test, "
                f"{C}x{H}x{W}, {self.n_classes} classes)")


def image_data(name: str, classes: Sequence[str], train_x: np.ndarray, train_y: np.ndarray,
               test_x: np.ndarray, test_y: np.ndarray, *, source: str, note: str = "",
               flip_ok: bool, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> ImageData:
    """Build an ImageData from numpy arrays (N, C, H, W) uint8 and (N,) labels, checking both."""
    for x, y, split in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"{name} {split}: images must be uint8 (N, C, H, W), got {x.dtype} {x.shape}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"{name} {split}: {x.shape[0]} images but labels of shape {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"{name} {split}: labels outside 0..{len(classes) - 1}")
    if mean is None or std is None:
        mean, std = channel_stats(train_x)
    return ImageData(
        name=name, classes=tuple(classes),
        train_x=torch.from_numpy(np.ascontiguousarray(train_x)),
        train_y=torch.from_numpy(train_y.astype(np.int64, copy=False)),
        test_x=torch.from_numpy(np.ascontiguousarray(test_x)),
        test_y=torch.from_numpy(test_y.astype(np.int64, copy=False)),
        source=source, note=note, flip_ok=flip_ok,
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the [0, 1] scale, exact.

    Counts the 256 possible values per channel (no float copy of the images is made).
    """
    v = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = np.bincount(x[:, c].ravel(), minlength=256).astype(np.float64)  # (256,)
        n = hist.sum()
        m = (hist * v).sum() / n
        var = (hist * (v - m) ** 2).sum() / n
        means.append(float(m))
        stds.append(float(np.sqrt(var)))
    return tuple(means), tuple(stds)


# --- text data


@dataclass(frozen=True, eq=False)
class TextData:
    """A character-level text dataset: vocabulary and the train/validation texts as ids.

    The id tensors are shared by every caller of `load()`: treat them as read-only.

    Attributes:
        vocab: the sorted distinct characters; id i stands for vocab[i].
        train_ids, val_ids: int64 tensors (N,) and (M,) of character ids.
    """

    name: str
    vocab: tuple[str, ...]
    train_ids: torch.Tensor  # (N,) int64
    val_ids: torch.Tensor  # (M,) int64
    source: str
    note: str

    splits = ("train", "validation")

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stoi", {ch: i for i, ch in enumerate(self.vocab)})

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, s: str, *, skip_unknown: bool = False) -> list[int]:
        """Character ids of `s`; unknown characters raise ValueError, or are dropped if skip_unknown."""
        stoi = self._stoi  # type: ignore[attr-defined]
        if skip_unknown:
            return [stoi[ch] for ch in s if ch in stoi]
        unknown = sorted({ch for ch in s if ch not in stoi})
        if unknown:
            raise ValueError(f"characters not in the {self.name} vocabulary: {unknown!r}")
        return [stoi[ch] for ch in s]

    def decode(self, ids: Sequence[int] | torch.Tensor | np.ndarray) -> str:
        """The text of a sequence of ids."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.vocab[int(i)] for i in ids)

    def split(self, name: str) -> torch.Tensor:
        """Ids of split 'train' or 'validation'."""
        if name == "train":
            return self.train_ids
        if name in ("validation", "val"):
            return self.val_ids
        raise ValueError(f"{self.name} has splits {self.splits}, not {name!r}")

    def __repr__(self) -> str:
        return (f"TextData({self.name!r}, {len(self.train_ids):,} train / {len(self.val_ids):,} "
                f"validation characters, vocabulary {self.vocab_size})")


def encode_array(text: str, vocab: Sequence[str]) -> np.ndarray:
    """Ids of `text` as int64 numpy (fast path for long texts through a code-point lookup table)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (N,)
    vmax = max(ord(c) for c in vocab)
    table = np.full(vmax + 1, -1, dtype=np.int64)
    for i, c in enumerate(vocab):
        table[ord(c)] = i
    if codes.size and codes.max() > vmax:
        raise ValueError("text has characters outside the vocabulary")
    ids = table[codes]
    if (ids < 0).any():
        raise ValueError("text has characters outside the vocabulary")
    return ids


# --- captioned images


@dataclass(frozen=True, eq=False)
class CaptionData:
    """Images with reference captions, held in memory with a fixed train/test split.

    Word-level: vocab[0..3] are '<pad>', '<s>', '</s>', '<unk>', then the words. A caption is
    stored as its word ids followed by '</s>', padded with 0; an image has 1..R references.
    Synthetic scenes (data/scenes.py) also know each item's class and box and what each caption
    states (its layout), so a caption can be checked and an attention map scored; a folder of
    photos (data/caption_folder.py) has None there.

    Attributes:
        train_x, test_x: uint8 (N, C, H, W).
        train_refs, test_refs: int64 (N, R, L) word ids, </s>, then 0.
        train_nrefs, test_nrefs: int64 (N,), how many of the R references an image has (>= 1).
        language: 'en' or 'zh' (a Chinese caption joins its words without spaces).
        item_classes: names of the item classes the scenes are made of (() for photos).
        noun_class: per vocabulary word, the item class it names (-1: none), for localisation.
        boxes: split -> int64 (N, K, 4) item boxes (x0, y0, x1, y1) in pixels, end exclusive,
            rows of -1 past the last item; classes: split -> int64 (N, K) item classes, -1 pad.
        layouts: split -> int64 (N, 5) what the scene is (scenes.Layout.encode), or None.
        novel: int64 (M,) of 0/1 for the test split: 1 where the composition never occurs in training.
    """

    name: str
    language: str
    vocab: tuple[str, ...]
    train_x: torch.Tensor
    train_refs: torch.Tensor
    train_nrefs: torch.Tensor
    test_x: torch.Tensor
    test_refs: torch.Tensor
    test_nrefs: torch.Tensor
    source: str
    note: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    item_classes: tuple[str, ...] = ()
    noun_class: tuple[int, ...] = ()
    boxes: dict[str, torch.Tensor] | None = None
    classes: dict[str, torch.Tensor] | None = None
    layouts: dict[str, torch.Tensor] | None = None
    novel: torch.Tensor | None = None

    splits = ("train", "test")
    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.vocab)})

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def max_len(self) -> int:
        """Longest reference in words, with its </s>."""
        return int(max(self.train_refs.shape[2], self.test_refs.shape[2]))

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, refs, nrefs) of split 'train' or 'test'."""
        if name == "train":
            return self.train_x, self.train_refs, self.train_nrefs
        if name == "test":
            return self.test_x, self.test_refs, self.test_nrefs
        raise ValueError(f"{self.name} has splits {self.splits}, not {name!r}")

    def encode(self, words: Sequence[str]) -> list[int]:
        """Word ids (unknown words -> <unk>), without </s>."""
        stoi = self._stoi  # type: ignore[attr-defined]
        return [stoi.get(w, self.UNK) for w in words]

    def words(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """The words of a sequence of ids, up to the first </s>; padding and <s> are skipped."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if int(i) == self.EOS:
                break
            if int(i) not in (self.PAD, self.BOS):
                out.append(self.vocab[int(i)])
        return out

    def text(self, words: Sequence[str]) -> str:
        """Words as a person writes them: spaced in English, joined in Chinese."""
        return ("" if self.language == "zh" else " ").join(words)

    def references(self, split: str, i: int) -> list[list[str]]:
        """The reference captions of image i as word lists."""
        _, refs, nrefs = self.split(split)
        return [self.words(refs[i, r]) for r in range(int(nrefs[i]))]

    def __repr__(self) -> str:
        C, (H, W) = self.channels, self.size
        return (f"CaptionData({self.name!r}, {len(self.train_x):,} train / {len(self.test_x):,} test, "
                f"{C}x{H}x{W}, {self.language}, vocabulary {self.vocab_size})")


def pad_refs(refs: Sequence[Sequence[Sequence[int]]], eos: int = CaptionData.EOS
             ) -> tuple[np.ndarray, np.ndarray]:
    """Ragged references (per image, 1..R id lists without </s>) -> (N, R, L) int64 with </s>
    and padding 0, and (N,) counts."""
    R = max(len(r) for r in refs)
    L = max(len(c) for r in refs for c in r) + 1
    out = np.zeros((len(refs), R, L), dtype=np.int64)
    for i, rs in enumerate(refs):
        for j, c in enumerate(rs):
            out[i, j, :len(c) + 1] = [*c, eos]
    return out, np.array([len(r) for r in refs], dtype=np.int64)


def download_command(name: str) -> str:
    """The CLI command that downloads dataset `name` (for error messages)."""
    return f"python -m karp_models download {name}"
