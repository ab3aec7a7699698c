"""File formats of the image datasets, read without torchvision: IDX (MNIST's and
Fashion-MNIST's, after LeCun et al., http://yann.lecun.com/exdb/mnist/, as torchvision's
read_sn3_pascalvincent_tensor reads it) and CIFAR-10's pickled python batches (read by an
unpickler that builds numpy arrays and nothing else). Every malformed file raises DatasetMissing
with what to do.
"""
from __future__ import annotations

import codecs
import gzip
import pickle
from pathlib import Path
from typing import Iterator

import numpy as np

from karp_models.data.base import DatasetMissing, download_command
from karp_models.i18n import _


# --- IDX files

IDX_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def _idx_candidates(folder: Path, stem: str) -> Iterator[Path]:
    for s in (stem, stem.replace("-idx", ".idx")):  # LeCun's names, and the dotted Kaggle ones
        yield folder / s
        yield folder / f"{s}.gz"


def find_idx_files(folder: Path, torchvision_name: str) -> dict[str, Path] | None:
    """The four IDX files in `folder` or in its torchvision layout <folder>/<Name>/raw/, or None."""
    for d in (folder, folder / torchvision_name / "raw"):
        found = {}
        for key, stem in IDX_FILES.items():
            hit = next((p for p in _idx_candidates(d, stem) if p.is_file()), None)
            if hit is not None:
                found[key] = hit
        if len(found) == len(IDX_FILES):
            return found
    return None


def _open(p: Path):
    return gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")


def idx_header(p: Path) -> tuple[int, ...]:
    """The dimensions stored in an IDX file of unsigned bytes (reads a few bytes only)."""
    with _open(p) as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] != 0x08:
            raise DatasetMissing(_("{file} is not an IDX file of unsigned bytes; get the file again").format(file=p))
        dims = f.read(4 * head[3])
    return tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))


def read_idx(p: Path) -> np.ndarray:
    """An IDX file of unsigned bytes as a uint8 array of its stored shape."""
    with _open(p) as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DatasetMissing(_("{file} is not an IDX file of unsigned bytes; get the file again").format(file=p))
    nd = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw[4:4 + 4 * nd], dtype=">u4"))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if body.size != int(np.prod(dims)):
        raise DatasetMissing(_("{file} is truncated ({size:,} of {total:,} bytes); get the file again").format(
            file=p, size=body.size, total=int(np.prod(dims))))
    return body.reshape(dims).copy()  # writable, independent of the file buffer


def _idx_sizes(files: dict[str, Path]) -> dict[str, int]:
    return {"train": idx_header(files["train_x"])[0], "test": idx_header(files["test_x"])[0]}


def _decode_idx(files: dict[str, Path]) -> dict[str, np.ndarray]:
    a = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        x, y = a[f"{split}_x"], a[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetMissing(_("{file}: images {images} and labels {labels} do not match; get the files "
                                   "again").format(file=files[split + "_x"], images=x.shape, labels=y.shape))
        a[f"{split}_x"] = x[:, None]  # (N, 1, H, W)
        a[f"{split}_y"] = y.astype(np.int64)
    return a


# --- CIFAR-10 batches


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch and nothing else: only the globals a pickled numpy array needs
    (the "restricting globals" recipe of Python's pickle documentation), so a file that would
    build any other object, or run code, is refused before anything of it runs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused: it asks for {module}.{name}, which a CIFAR "
                                         f"batch never holds")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]              # numpy's own _reconstruct
        return {"ndarray": np.ndarray, "dtype": np.dtype, "encode": codecs.encode}[name]


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of CIFAR-10's python version (a pickled dict: 'data' uint8 (N, 3072) in
    channel-planar order, 'labels' N ints) -> (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    Read as torchvision's CIFAR10 reads it (encoding latin1), but through _BatchUnpickler.
    Raises DatasetMissing for anything that is not such a batch.
    """
    try:
        with open(path, "rb") as f:
            d = _BatchUnpickler(f, encoding="latin1").load()
        x, y = d["data"], np.asarray(d.get("labels", d.get("fine_labels")), dtype=np.int64)
        ok = (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2
              and x.shape[1] == 3 * 32 * 32 and y.shape == (len(x),) and (len(y) == 0 or 0 <= y.min() <= y.max() <= 9))
    except (OSError, EOFError, KeyError, TypeError, ValueError, AttributeError, pickle.UnpicklingError) as e:
        raise DatasetMissing(_("{file} is not a CIFAR-10 batch ({error}); get the files again: {download}").format(
            file=path, error=f"{type(e).__name__}: {e}", download=download_command("cifar10"))) from None
    if not ok:
        raise DatasetMissing(_("{file} is not a CIFAR-10 batch (images and labels of the wrong kind); get the "
                               "files again: {download}").format(file=path, download=download_command("cifar10")))
    return x.reshape(-1, 3, 32, 32), y
