"""On-disk cache of decoded datasets: .npz files (no pickle) outside the repository, keyed by source.

Where: $KARP_CACHE, else ~/.cache/karp (the XDG convention torchvision and Hugging Face follow).
Layout:
    <cache>/torchvision/    root handed to torchvision downloads
                            (FashionMNIST/raw, MNIST/raw, cifar-10-batches-py)
    <cache>/arrays/         <dataset>-<key>.npz, the decoded arrays; key = hash of the source files' paths,
                            sizes and modification times, so a changed source is decoded again
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

FORMAT = 1  # bump when the layout of the cached arrays changes

# --- where


def cache_dir() -> Path:
    """The cache root: $KARP_CACHE or ~/.cache/karp (not created until something is written)."""
    env = os.environ.get("KARP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "karp"


def torchvision_root() -> Path:
    """Root folder for torchvision's dataset classes (download=True writes here)."""
    return cache_dir() / "torchvision"


# --- keys


def source_key(*parts: object, files: Iterable[Path] = ()) -> str:
    """A short hash of `parts` and each file's resolved path, size and mtime."""
    h = hashlib.sha1(repr((FORMAT, parts)).encode())
    for p in files:
        st = Path(p).stat()
        h.update(repr((str(Path(p).resolve()), st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()[:12]


# --- arrays


def _path(name: str, key: str) -> Path:
    return cache_dir() / "arrays" / f"{name}-{key}.npz"


def read_arrays(name: str, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays of (name, key), or None if absent or unreadable."""
    p = _path(name, key)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:  # truncated or corrupt: decode again
        warnings.warn(f"ignoring unreadable cache file {p}: {e}", stacklevel=2)
        return None


def write_arrays(name: str, key: str, arrays: dict[str, np.ndarray]) -> Path | None:
    """Write atomically (temp file + rename) and drop older files of the same dataset.

    A cache that cannot be written (read-only home, full disk) only costs speed: warns, returns None.
    """
    p = _path(name, key)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{name}-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in p.parent.glob(f"{name}-*.npz"):
            if old != p and old.name[len(name) + 1:-4].isalnum():
                old.unlink(missing_ok=True)
        return p
    except OSError as e:
        warnings.warn(f"could not write the dataset cache {p}: {e}", stacklevel=2)
        return None


def cached_arrays(name: str, key: str,
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Read (name, key) from the cache, or build the arrays, cache them and return them."""
    arrays = read_arrays(name, key)
    if arrays is None:
        arrays = build()
        write_arrays(name, key, arrays)
    return arrays
