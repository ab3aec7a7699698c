"""Fixtures for karp_models.data tests: tiny IDX files, an empty cache, a network that refuses."""
from __future__ import annotations

import gzip
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from karp_models.data import images


def write_idx(path: Path, arr: np.ndarray, *, gz: bool) -> Path:
    """Write `arr` (uint8) as an IDX file, LeCun's format: 0 0 8 ndim, big-endian dims, bytes."""
    data = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_fake_idx(folder: Path, *, n_train: int = 12, n_test: int = 5, gz: bool = True,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Four small IDX files (28x28 images, labels 0..9) in `folder`; returns what was written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": (np.arange(n_train) % 10).astype(np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for key, stem in images.IDX_FILES.items():
        write_idx(folder / stem, arrays[key], gz=gz)
    return arrays


@pytest.fixture
def fake_idx():
    return make_fake_idx


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """An empty $KARP_CACHE (so no torchvision download is found) and no user-named folder."""
    cache = tmp_path / "karp-cache"
    monkeypatch.setenv("KARP_CACHE", str(cache))
    monkeypatch.delenv(images.FASHION_ENV, raising=False)
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a host or open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
