"""A training time-lapse: a few whole-model weight snapshots of an image classifier over a run,
saved with it, so that afterwards every view can be replayed at each of them.

Which steps are kept: multiples of a stride, starting at the preview interval and doubling
whenever more than `max_items - 1` would be on the grid (so they stay evenly spaced over any
length of run, step 0 included), plus the run's last step. The weights are exact float32 copies
(state_dict: parameters and buffers). A model whose snapshots would not fit `MAX_BYTES` keeps
fewer (at least 2) or none. Saved under tensors named 'timelapse/<step>/<state_dict name>'
with the steps in the metadata entry 'timelapse'.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from karp_models.i18n import _

MAX_ITEMS = 12                 # snapshots kept at most (the last step's included)
MAX_BYTES = 24 * 1024 * 1024   # all of them together, as float32
PREFIX = "timelapse/"
META_KEY = "timelapse"


def capacity(model: nn.Module, max_items: int = MAX_ITEMS, max_bytes: int = MAX_BYTES) -> int:
    """How many snapshots of `model` fit: min(max_items, max_bytes // its bytes), 0 below 2."""
    n_bytes = 4 * sum(t.numel() for t in model.state_dict().values())
    n = min(max_items, max_bytes // max(1, n_bytes))
    return n if n >= 2 else 0


def _copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


@dataclass
class TimeLapse:
    """The snapshots kept so far. every: the first stride (the preview interval, steps);
    max_items: at most this many (>= 2). items: [(step, state_dict on the CPU)], oldest first."""

    every: int
    max_items: int = MAX_ITEMS
    stride: int = 0
    items: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_items < 2:
            raise ValueError(f"every {self.every} and max_items {self.max_items}: need >= 1 and >= 2")
        self.stride = self.stride or self.every

    @property
    def steps(self) -> list[int]:
        return [s for s, _ in self.items]

    def offer(self, step: int, model: nn.Module, last: bool = False) -> bool:
        """Keep a copy of the model at `step` if it falls on the grid, or if it is the run's
        last step (`last`); returns whether it was kept. A previous off-grid last step is
        dropped once training goes on past it."""
        if self.items and self.items[-1][0] % self.stride and step > self.items[-1][0]:
            self.items.pop()                               # a last step that was not the last
        if self.items and step <= self.items[-1][0]:
            return False
        if step % self.stride:
            if not last:
                return False
            self.items.append((step, _copy(model)))
            return True
        self.items.append((step, _copy(model)))
        while sum(1 for s, _ in self.items if s % self.stride == 0) > self.max_items - 1:
            self.stride *= 2
            tail = self.items[-1] if self.items[-1][0] % self.stride else None
            self.items = [it for it in self.items if it[0] % self.stride == 0]
            if tail is not None and last:
                self.items.append(tail)
        return True


def for_model(model: nn.Module, every: int) -> TimeLapse | None:
    """A TimeLapse for `model` (None when its snapshots would not fit MAX_BYTES)."""
    n = capacity(model)
    return TimeLapse(every=max(1, int(every)), max_items=n) if n else None


def tensors(items: list[tuple[int, dict[str, torch.Tensor]]]) -> tuple[dict[str, torch.Tensor], dict]:
    """The snapshots as checkpoint tensors and their metadata entry {'steps': [...]}."""
    out = {f"{PREFIX}{step}/{name}": t for step, sd in items for name, t in sd.items()}
    return out, {"steps": [int(s) for s, _ in items]}


def load(path: str | os.PathLike) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """The snapshots saved in a run file: [(step, state_dict)], oldest first; [] for a run
    without them. Raises CheckpointError for a damaged file."""
    from karp_models.train.checkpoints import _read_tensors
    from karp_models.train.headers import CheckpointError, parse_metadata, read_header

    path = Path(path)
    header, metadata = read_header(path)
    names = [k for k in header if k.startswith(PREFIX)]
    try:
        steps = [int(s) for s in parse_metadata(path, metadata).get(META_KEY, {}).get("steps", [])]
        where = {k: (int(k[len(PREFIX):].split("/", 1)[0]), k[len(PREFIX):].split("/", 1)[1]) for k in names}
    except (AttributeError, TypeError, ValueError, IndexError) as e:
        raise CheckpointError(_("{path}: a time-lapse that cannot be read ({error})").format(
            path=path, error=f"{type(e).__name__}: {e}")) from e
    flat = _read_tensors(path, names)
    out: dict[int, dict[str, torch.Tensor]] = {s: {} for s in steps}
    for k, t in flat.items():
        step, name = where[k]
        if step in out:
            out[step][name] = t
    return [(s, out[s]) for s in sorted(out) if out[s]]
