"""Captioned photos of your own, in the layouts Flickr8k and COCO ship in: a folder of images and a
captions file, read into a CaptionData (the 'captions-folder' dataset).

Captions files understood (the first found in the folder, searched recursively):
  captions.txt                 Flickr8k as redistributed: CSV with the header 'image,caption'
  *.token.txt                  Flickr8k's own: '<image>#<k>\t<caption>' per line
  captions_*.json              COCO: {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}
Images are matched by file name anywhere under the folder, centre-cropped to a square and
resized (RGB, 64x64 by default). Words: English is lower-cased and split into words (Karpathy's
neuraltalk preprocessing: letters and digits, at most 20 words, words seen fewer than
min_count times in training become <unk>). Chinese captions (most characters CJK) are split
into characters: no segmenter ships offline here, and characters need none.
A tenth of the images, chosen by a hash of the file name (stable whatever else is added), is
the test split.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from karp_models.data.base import CaptionData, DatasetMissing, DatasetStatus, channel_stats, pad_refs
from karp_models.data.cache import cached_arrays, source_key
from karp_models.i18n import _

ENV = "KARP_CAPTIONS_DIR"
IMAGE_ENDINGS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_WORDS = 20
HOW = (f"export {ENV}=/path/to/folder    # images + captions.txt (Flickr8k) or "
       f"annotations/captions_*.json (COCO)")

# ---------------------------------------------------------------------------- reading the layout


def find_captions_file(folder: Path) -> Path | None:
    """The folder's captions file (see the module docstring), or None."""
    for pattern in ("captions.txt", "*.token.txt", "captions_*.json"):
        hits = sorted(folder.rglob(pattern))
        if hits:
            return hits[0]
    return None


def read_captions(path: Path) -> dict[str, list[str]]:
    """Image file name -> its captions, from any of the three layouts."""
    out: dict[str, list[str]] = {}
    if path.suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        names = {im["id"]: Path(im["file_name"]).name for im in doc["images"]}
        for a in doc["annotations"]:
            out.setdefault(names[a["image_id"]], []).append(a["caption"])
    elif path.name.endswith(".token.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                key, cap = line.split("\t", 1)
                out.setdefault(Path(key.split("#")[0]).name, []).append(cap)
    else:
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out.setdefault(Path(row["image"]).name, []).append(row["caption"])
    return out


def is_chinese(captions: list[str]) -> bool:
    chars = [c for cap in captions for c in cap if not c.isspace()]
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in chars)
    return cjk > len(chars) / 2


def tokenize(caption: str, language: str) -> list[str]:
    """Words of a caption: lower-case English words, or the Chinese characters (no punctuation)."""
    if language == "zh":
        return [c for c in caption if "\u4e00" <= c <= "\u9fff" or c.isalnum()][:MAX_WORDS]
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", caption.lower())[:MAX_WORDS]


def is_test(name: str) -> bool:
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10 == 0


def read_image(path: Path, size: int) -> np.ndarray:
    """(3, size, size) uint8: the centre square of the image, resized."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        im = im.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()

# ---------------------------------------------------------------------------- the dataset


def _folder(root: str | os.PathLike | None) -> Path | None:
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV)
    return Path(env) if env else None


def status(root: str | os.PathLike | None = None) -> DatasetStatus:
    folder = _folder(root)
    cap = find_captions_file(folder) if folder is not None and folder.is_dir() else None
    if cap is None:
        why = (_("no captions file in {folder}").format(folder=folder) if folder is not None
               else _("${variable} is not set").format(variable=ENV))
        return DatasetStatus("captions-folder", "scenes", False, _("not found"), how_to_get=HOW,
                             note=_("{why}; for your own captioned photos (Flickr8k or COCO layout)").format(why=why))
    return DatasetStatus("captions-folder", "scenes", True, _("folder {folder} ({file})").format(
        folder=folder, file=cap.name))


def load(root: str | os.PathLike | None = None, *, size: int = 64, min_count: int = 5) -> CaptionData:
    """The folder's captioned images as a CaptionData (see the module docstring).

    Raises DatasetMissing when there is no folder, no captions file or no image it names."""
    folder = _folder(root)
    cap = find_captions_file(folder) if folder is not None and folder.is_dir() else None
    if cap is None:
        raise DatasetMissing(_("captions-folder: {note}. Point karp at one with:\n  {command}").format(
            note=status(root).note, command=HOW))
    return _load(folder.resolve(), cap.resolve(), size, min_count)


@functools.lru_cache(maxsize=2)
def _load(folder: Path, cap: Path, size: int, min_count: int) -> CaptionData:
    captions = read_captions(cap)
    files = {p.name: p for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_ENDINGS}
    names = sorted(n for n in captions if n in files)
    if not names:
        raise DatasetMissing(_("{file} names {n} images, none of them under {folder}").format(
            file=cap, n=len(captions), folder=folder))
    language = "zh" if is_chinese([c for n in names for c in captions[n]]) else "en"
    test = [n for n in names if is_test(n)] or names[-1:]
    train = [n for n in names if n not in set(test)] or names[:1]
    counts = Counter(w for n in train for c in captions[n] for w in tokenize(c, language))
    vocab = CaptionData.SPECIALS + tuple(sorted(w for w, k in counts.items() if k >= min_count))
    stoi = {w: i for i, w in enumerate(vocab)}

    def build() -> dict[str, np.ndarray]:
        a = {}
        for split, group in (("train", train), ("test", test)):
            a[f"{split}_x"] = np.stack([read_image(files[n], size) for n in group])
            ids = [[[stoi.get(w, CaptionData.UNK) for w in tokenize(c, language)] for c in captions[n]]
                   for n in group]
            a[f"{split}_refs"], a[f"{split}_nrefs"] = pad_refs(ids)
        mean, std = channel_stats(a["train_x"])
        return {**a, "mean": np.array(mean), "std": np.array(std)}

    key = source_key("captions-folder", size, min_count, files=[cap, *(files[n] for n in names)])
    a = cached_arrays("captions-folder", key, build)
    import torch

    t = {k: torch.from_numpy(v) for k, v in a.items()}
    return CaptionData(
        name="captions-folder", language=language, vocab=vocab,
        train_x=t["train_x"], train_refs=t["train_refs"], train_nrefs=t["train_nrefs"],
        test_x=t["test_x"], test_refs=t["test_refs"], test_nrefs=t["test_nrefs"],
        source=f"folder {folder} ({cap.name}, {len(names):,} images)",
        note=f"{len(train):,} train / {len(test):,} test images; words seen fewer than "
             f"{min_count} times are <unk>", mean=tuple(a["mean"].tolist()), std=tuple(a["std"].tolist()))
