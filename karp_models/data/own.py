"""A person's own classes: 2 to 10 named classes of images (uploads, camera shots, arrays, or a
folder in torchvision's ImageFolder layout) made into an ImageData in a model's input format,
with a seeded, stratified train/validation split.

Files are read by karp_models.preprocess, as Predict reads them: a file it refuses is skipped,
with Predict's own message as the reason. The input is made by the backbone's recipe: a karp
CNN's dataset style (28x28 grey for Fashion-MNIST and MNIST), or a torchvision backbone's weights
`transforms()` (resize, centre crop; its normalisation is the model's, so mean 0 and std 1 here).
The folder layout is torchvision.datasets.ImageFolder's (`root/<class>/<image>`, classes sorted);
saved files are safetensors, as karp's checkpoints are.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from karp_models import preprocess as pp
from karp_models.data.base import ImageData, image_data
from karp_models.i18n import _, ngettext

MIN_CLASSES, MAX_CLASSES = 2, 10
MAX_PER_CLASS = 500          # a folder's class with more files is refused (memory: 500 x 3x224x224 = 75 MB)
VAL_FRACTION = 0.2
FORMAT = "karp-own-1"

Item = bytes | np.ndarray | tuple[str, bytes | np.ndarray]   # a file's bytes or an image array, optionally named


class OwnDataError(ValueError):
    """The classes or images cannot make a dataset; the message says what to change."""


@dataclass(frozen=True)
class InputFormat:
    """What a model takes and how a picture becomes it.

    channels, size: the input (C, size, size). style: a karp_models.preprocess recipe ('fashion',
    'mnist', 'photo', ...). transform: a torchvision weights' transforms() with mean 0 and std 1
    (uint8 (3, H, W) -> float (3, size, size) in [0, 1]); when given it replaces the recipe.
    """

    channels: int = 1
    size: int = 28
    style: str = "fashion"
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    @classmethod
    def for_dataset(cls, dataset: str, channels: int, size: int) -> InputFormat:
        """The recipe of a model trained on `dataset` (preprocess.style_for: Fashion-MNIST's,
        MNIST's, CIFAR's photo crop)."""
        return cls(channels, size, pp.style_for(dataset))


@dataclass(frozen=True)
class Rejected:
    class_name: str
    name: str          # the file's name, or '#3' for the third unnamed item of the class
    reason: str        # Predict's message for the same file


@dataclass(frozen=True)
class Built:
    data: ImageData                     # train: the training images; test: the validation images
    rejected: tuple[Rejected, ...]      # files skipped, with why

    @property
    def counts(self) -> dict[str, tuple[int, int]]:
        """class -> (training images, validation images)."""
        tr = np.bincount(self.data.train_y.numpy(), minlength=self.data.n_classes)
        va = np.bincount(self.data.test_y.numpy(), minlength=self.data.n_classes)
        return {c: (int(a), int(b)) for c, a, b in zip(self.data.classes, tr, va)}


# ---------------------------------------------------------------------------- classes and one image


def check_classes(names: Sequence[str]) -> list[str]:
    """The class names, stripped; OwnDataError unless there are 2..10, none empty, none repeated."""
    out = [" ".join(str(n).split()) for n in names]
    if any(not n for n in out):
        raise OwnDataError(_("every class needs a name"))
    seen: dict[str, str] = {}
    for n in out:
        if n.casefold() in seen:
            raise OwnDataError(_("two classes are called {name}: give each its own name").format(name=repr(n)))
        seen[n.casefold()] = n
    if not MIN_CLASSES <= len(out) <= MAX_CLASSES:
        raise OwnDataError(ngettext("{n} class: name between {low} and {high} classes",
                                    "{n} classes: name between {low} and {high} classes", len(out)).format(
                                        n=len(out), low=MIN_CLASSES, high=MAX_CLASSES))
    return out


def to_input(item: bytes | np.ndarray, fmt: InputFormat, name: str = "") -> np.ndarray:
    """One file's bytes or an image array -> the model's input, uint8 (C, size, size).

    Raises preprocess.ImageError with Predict's message: not an image, damaged, too large, or
    blank after the recipe (nothing left for a model to see).
    """
    src = pp.decode(bytes(item), name) if isinstance(item, (bytes, bytearray, memoryview)) else np.asarray(item)
    if fmt.transform is not None:
        rgb = src.rgb if isinstance(src, pp.Decoded) else pp.from_array(src)   # (H, W, 3) uint8
        x = fmt.transform(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)).numpy()  # (3, S, S)
    else:
        p = pp.preprocess(src, fmt.style, size=fmt.size, channels=fmt.channels)
        if p.blank:
            what = f"'{name}'" if name else _("the image")
            raise pp.ImageError(_("{what} cannot be used: {why}.").format(what=what, why=p.notes[0]))
        x = p.x                                                       # (C, S, S) in [0, 1]
    if x.shape != (fmt.channels, fmt.size, fmt.size):
        raise ValueError(f"the input format made {x.shape}, not {(fmt.channels, fmt.size, fmt.size)}")
    return np.rint(x * 255).clip(0, 255).astype(np.uint8)


def _named(item: Item, i: int) -> tuple[str, bytes | np.ndarray]:
    return item if isinstance(item, tuple) else (f"#{i + 1}", item)


# ---------------------------------------------------------------------------- the dataset


def split(labels: np.ndarray, val_fraction: float = VAL_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices, sorted: per class, round(val_fraction * n) images (at least
    one) drawn by a seeded permutation; the same seed gives the same split."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx) - 1, max(1, round(val_fraction * len(idx))))
        val.append(rng.permutation(idx)[:k])
    v = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), v), v


def build(images: Mapping[str, Sequence[Item]], fmt: InputFormat = InputFormat(), *, name: str = "own",
          val_fraction: float = VAL_FRACTION, seed: int = 0, flip_ok: bool = False,
          source: str = "your images") -> Built:
    """An ImageData from {class name: images}, in `fmt`, split train/validation by `seed`.

    Args:
        images: class name -> items: a file's bytes, an image array ((H, W), (H, W, 3) or with
            alpha, any dtype), or (file name, either). Classes keep this order.
        val_fraction: the share of each class held out for validation (at least one image).
        flip_ok: whether a mirrored image keeps its class (augmentation flips it then).
    Returns:
        Built(data, rejected): data.train_* are the training images, data.test_* the validation
        images; rejected lists the files skipped and why.
    Raises:
        OwnDataError: fewer than 2 or more than 10 classes, a class without a name, or a class
            with fewer than 2 usable images (one to learn from, one to check).
    """
    classes = check_classes(list(images))
    if not 0 < val_fraction < 1:
        raise OwnDataError(_("the validation share must be between 0 and 1, got {share}").format(share=val_fraction))
    xs, ys, rejected = [], [], []
    for label, (cls, items) in enumerate(zip(classes, images.values())):
        n = 0
        for i, item in enumerate(items):
            file_name, raw = _named(item, i)
            try:
                xs.append(to_input(raw, fmt, file_name if isinstance(item, tuple) else ""))
            except pp.ImageError as e:
                rejected.append(Rejected(cls, file_name, str(e)))
                continue
            except Exception as e:  # noqa: BLE001 - any other decoder failure is still a bad file (as Predict)
                rejected.append(Rejected(cls, file_name, f"It could not be read ({type(e).__name__}: {e}). "
                                                         f"Try another file."))
                continue
            ys.append(label)
            n += 1
        if n < 2:
            bad = sum(r.class_name == cls for r in rejected)
            raise OwnDataError((ngettext("class {name} has {n} usable image ({bad} refused): every class needs "
                                         "at least 2, one to learn from and one to check",
                                         "class {name} has {n} usable images ({bad} refused): every class needs "
                                         "at least 2, one to learn from and one to check", n) if bad else
                                ngettext("class {name} has {n} usable image: every class needs at least 2, one "
                                         "to learn from and one to check",
                                         "class {name} has {n} usable images: every class needs at least 2, one "
                                         "to learn from and one to check", n)).format(name=repr(cls), n=n, bad=bad))
    x, y = np.stack(xs), np.asarray(ys, np.int64)
    tr, va = split(y, val_fraction, seed)
    note = (f"{len(tr)} training / {len(va)} validation images (validation share {val_fraction:g}, "
            f"seed {seed}); the test split is the validation images")
    if rejected:
        note += f"; {len(rejected)} file{'s' if len(rejected) != 1 else ''} refused"
    data = image_data(name, classes, x[tr], y[tr], x[va], y[va], source=source, note=note, flip_ok=flip_ok)
    return Built(data, tuple(rejected))


def read_folder(root: str | os.PathLike) -> dict[str, list[tuple[str, bytes]]]:
    """{class: [(file name, bytes)]} of a folder in ImageFolder's layout (`root/<class>/<file>`,
    subfolders included, classes and files sorted; hidden files skipped, every other file kept for
    the decoder to judge). Raises OwnDataError for a missing folder, one without class folders,
    or a class of more than MAX_PER_CLASS files."""
    from torchvision.datasets.folder import find_classes

    root = Path(root)
    if not root.is_dir():
        raise OwnDataError(_("{path} is not a folder on this server").format(path=root))
    try:
        classes, _index = find_classes(str(root))
    except FileNotFoundError:
        raise OwnDataError(_("{path} has no class folders: put each class's images in a folder named after it "
                             "({path}/cat/1.jpg, {path}/dog/1.jpg, ...)").format(path=root)) from None
    out = {}
    for c in classes:
        files = sorted(p for p in (root / c).rglob("*") if p.is_file() and not p.name.startswith("."))
        if len(files) > MAX_PER_CLASS:
            raise OwnDataError(_("{path} has {n:,} files; at most {most} a class are read: make a smaller "
                                 "folder").format(path=root / c, n=len(files), most=MAX_PER_CLASS))
        out[c] = [(str(p.relative_to(root / c)), p.read_bytes()) for p in files]
    return out


def folder_name(name: str) -> str:
    """A class or file name made safe as one folder or file name: letters (any script), digits,
    '_', '-', '.' kept, anything else '-', no leading dot; 'class' when nothing is left."""
    s = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFKC", str(name)).strip()).strip("-.")
    return s[:80] or "class"


def write_folder(images: Mapping[str, Sequence[tuple[str, bytes]]], root: str | os.PathLike) -> Path:
    """Write {class: [(file name, bytes)]} as files in ImageFolder's layout, root/<class>/<file>,
    the bytes as they came (read_folder reads them back, classes in sorted order). Class and
    file names are made safe (folder_name); files are numbered so none is overwritten. Raises
    OwnDataError when root exists and is not empty, or two classes give the same folder name."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise OwnDataError(_("{path} exists already: choose another name").format(path=root))
    folders = [folder_name(c) for c in images]
    if len({f.casefold() for f in folders}) < len(folders):
        raise OwnDataError(_("two classes give the same folder name ({names}): rename one").format(
            names=", ".join(folders)))
    for folder, items in zip(folders, images.values()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, (name, raw) in enumerate(items):
            (root / folder / f"{i + 1:04d}-{folder_name(Path(name).name)}").write_bytes(bytes(raw))
    return root


def from_folder(root: str | os.PathLike, fmt: InputFormat = InputFormat(), **kw) -> Built:
    """build() over read_folder(root); the source names the folder."""
    kw.setdefault("source", f"folder {Path(root)}")
    kw.setdefault("name", Path(root).name or "own")
    return build(read_folder(root), fmt, **kw)


# ---------------------------------------------------------------------------- saved to a file


def fingerprint(data: ImageData) -> str:
    """SHA-256 (hex) of the classes, the images and labels of both splits: the same dataset
    gives the same fingerprint whatever its name, source or note."""
    h = hashlib.sha256(json.dumps(list(data.classes)).encode())
    for t in (data.train_x, data.train_y, data.test_x, data.test_y):
        a = t.contiguous().numpy()
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(data: ImageData, path: str | os.PathLike) -> Path:
    """Write the dataset (uint8 images, labels, classes, source, split facts and its
    fingerprint) as safetensors, atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "name": data.name, "classes": json.dumps(list(data.classes)),
            "source": data.source, "note": data.note, "flip_ok": json.dumps(data.flip_ok),
            "mean": json.dumps(data.mean), "std": json.dumps(data.std), "sha256": fingerprint(data)}
    tensors = {"train_x": data.train_x, "train_y": data.train_y, "test_x": data.test_x, "test_y": data.test_y}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fingerprint_of(path: str | os.PathLike) -> str:
    """The fingerprint a file written by save() records (its header only). Raises OwnDataError."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - safetensors' own errors: not a dataset file
        raise OwnDataError(f"{path} cannot be read as a saved dataset ({type(e).__name__}: {e})") from None
    if meta.get("format") != FORMAT or "sha256" not in meta:
        raise OwnDataError(f"{path} is not a dataset saved by karp")
    return meta["sha256"]


def load(path: str | os.PathLike) -> ImageData:
    """A dataset written by save(). Raises OwnDataError for anything else."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise OwnDataError(f"{path} is not a dataset saved by karp (format {meta.get('format')!r})")
            a = {k: f.get_tensor(k) for k in ("train_x", "train_y", "test_x", "test_y")}
        return image_data(meta["name"], json.loads(meta["classes"]), a["train_x"], a["train_y"], a["test_x"],
                          a["test_y"], source=meta["source"], note=meta["note"],
                          flip_ok=json.loads(meta["flip_ok"]), mean=json.loads(meta["mean"]),
                          std=json.loads(meta["std"]))
    except OwnDataError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors' own errors, a missing key or bad JSON: not ours
        raise OwnDataError(f"{path} cannot be read as a saved dataset ({type(e).__name__}: {e})") from None

