"""The app's one cache of built figures and of results computed under a live progress bar.

Shared by every session of the process (Streamlit runs each in its own thread), so it is locked;
bounded, least recently used first out; a value is built once per key even when several
sessions ask at the same time (the others wait for it), while different keys build in parallel.

Why not st.cache_data / st.cache_resource here: a cached function replays the st.* calls it
made, so a progress bar drawn by the run that computed a result cannot be inside one; and
figures are keyed by tuples the caller already has (model file, mtime, image hash, ...), so no
argument hashing is needed. Models, datasets and arrays stay in Streamlit's caches (loaders.py,
models.py, compute.py), by role.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go

from karp_models.i18n import language

T = TypeVar("T")
_MISSING = object()


class SharedLRU:
    """A thread-safe, bounded LRU map with build-once `get_or_build`: at most `max_entries`
    values and, with `sizeof` (value -> bytes), at most `max_bytes` in all (a value larger than
    that alone is returned but not kept)."""

    def __init__(self, max_entries: int, *, max_bytes: int | None = None,
                 sizeof: Callable[[Any], int] | None = None) -> None:
        if (max_bytes is None) != (sizeof is None):
            raise ValueError("max_bytes and sizeof go together")
        self.max_entries, self.max_bytes, self._sizeof = max_entries, max_bytes, sizeof
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self.nbytes = 0                                    # bytes held (with sizeof)
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0                                    # how many values were built (for tests)
        self.hits = self.misses = 0                        # get_or_build's answers (for the bench)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._put(key, value)

    def _put(self, key: Hashable, value: Any) -> None:  # with the lock held
        size = self._sizeof(value) if self._sizeof is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            if key in self._data:                          # alone over the bound: never kept
                del self._data[key]
                self.nbytes -= self._sizes.pop(key)
            return
        self.nbytes += size - self._sizes.get(key, 0)
        self._data[key], self._sizes[key] = value, size
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries or (self.max_bytes is not None
                                                     and self.nbytes > self.max_bytes):
            old, _ = self._data.popitem(last=False)
            self.nbytes -= self._sizes.pop(old)

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value under `key`, built by `build()` on a miss; concurrent callers of the same
        key wait for the one build. An exception in `build` is raised and nothing is stored."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            self.hits += 1
            return value
        with self._lock:
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            value = self.get(key, _MISSING)              # built while this call waited
            if value is not _MISSING:
                self.hits += 1
                return value
            try:
                value = build()
                with self._lock:
                    self.builds += 1
                    self.misses += 1
                    self._put(key, value)
            finally:
                with self._lock:
                    if self._building.get(key) is gate:
                        del self._building[key]
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self.nbytes = 0


FIGURES = SharedLRU(64)   # inspection figures (Predict, Explain): built rarely, reused often
LIVE = SharedLRU(64)      # training charts: a new key per record, so a pool of their own
RESULTS = SharedLRU(32)   # results computed under a live progress bar (sanity check, t-SNE...)


def figure(key: tuple, build: Callable[[], go.Figure], *, live: bool = False) -> go.Figure:
    """A figure built once per key and shared by every session. Plotly's figure building costs
    more CPU than a cached page's whole rerun otherwise. Never mutate the result:
    st.plotly_chart works on a copy (Figure.to_dict). live: a training chart (the LIVE pool).
    The key gets the session's language in front: a figure's words are in one language."""
    return (LIVE if live else FIGURES).get_or_build((language(), *key), build)


def result(key: tuple, compute: Callable[[], T]) -> T:
    """A result computed once per key (with whatever progress bar `compute` drives)."""
    return RESULTS.get_or_build(key, compute)


def image_key(x: np.ndarray) -> str:
    """A short hash of an array's bytes and shape, for cache keys and widget keys."""
    a = np.ascontiguousarray(x)
    return hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()[:16]
