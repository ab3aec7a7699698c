"""A training time-lapse: a few whole-model weight snapshots over a run (of a task that asks for
them: its `timelapse` attribute, e.g. image classifiers and character models), saved with it, so
that afterwards every view can be replayed at each of them.

Which steps are kept: multiples of a stride, starting at the preview interval and doubling
whenever more than `max_items - 1` would be on the grid (so they stay evenly spaced over any
length of run, step 0 included), plus the run's last step. The weights are exact float32 copies
(state_dict: parameters and buffers). A model whose snapshots would not fit `MAX_BYTES` keeps
fewer (at least 2) or none. Saved under tensors named 'timelapse/<step>/<state_dict name>'
with the steps and the stride in the metadata entry 'timelapse'.

A run continued from a saved run or recovered from its autosave goes on from the snapshots it
had (`resume`): its steps keep counting from the earlier run's, on the same grid.
"""
from __future__ import annotations

import math
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
        self._thin(keep_tail=last)
        return True

    def _thin(self, keep_tail: bool) -> None:
        """Double the stride while more than max_items - 1 kept steps are on the grid; an
        off-grid last item stays when `keep_tail`."""
        while sum(1 for s, _ in self.items if s % self.stride == 0) > self.max_items - 1:
            self.stride *= 2
            tail = self.items[-1] if self.items[-1][0] % self.stride else None
            self.items = [it for it in self.items if it[0] % self.stride == 0]
            if tail is not None and keep_tail:
                self.items.append(tail)

    @classmethod
    def resume(cls, items: list[tuple[int, dict[str, torch.Tensor]]], every: int,
               max_items: int = MAX_ITEMS, stride: int | None = None) -> TimeLapse:
        """A TimeLapse that goes on from an earlier run's snapshots `items` (oldest first; the
        last may be off the grid: where that run ended), saved with `stride` (None: a file
        written before the stride was saved, inferred from the steps). The grid becomes the
        least common multiple of that stride and `every` (this run's preview interval), so the
        steps this run offers land on it; items off it are dropped, except the last."""
        items = sorted(items, key=lambda it: it[0])
        if stride is None:                  # the grid's steps: all but the last (it may be off)
            head = [s for s, _ in items[:-1]]
            stride = math.gcd(*head) if any(head) else every
        stride = math.lcm(max(1, int(stride)), max(1, int(every)))
        lapse = cls(every=max(1, int(every)), max_items=max_items, stride=stride)
        kept = [it for it in items[:-1] if it[0] % stride == 0]
        lapse.items = kept + items[-1:]
        lapse._thin(keep_tail=True)
        return lapse


def for_model(model: nn.Module, every: int,
              earlier: tuple[list[tuple[int, dict[str, torch.Tensor]]], int | None] | None = None
              ) -> TimeLapse | None:
    """A TimeLapse for `model` (None when its snapshots would not fit MAX_BYTES); earlier:
    (items, stride) of the run it continues (`read`), whose snapshots it goes on from."""
    n = capacity(model)
    if not n:
        return None
    if earlier and earlier[0]:
        return TimeLapse.resume(earlier[0], every, n, earlier[1])
    return TimeLapse(every=max(1, int(every)), max_items=n)


def tensors(lapse: TimeLapse | list[tuple[int, dict[str, torch.Tensor]]]
            ) -> tuple[dict[str, torch.Tensor], dict]:
    """The snapshots as checkpoint tensors and their metadata entry {'steps': [...], 'stride': n}
    (stride only from a TimeLapse)."""
    items = lapse.items if isinstance(lapse, TimeLapse) else lapse
    out = {f"{PREFIX}{step}/{name}": t for step, sd in items for name, t in sd.items()}
    meta: dict = {"steps": [int(s) for s, _ in items]}
    if isinstance(lapse, TimeLapse):
        meta["stride"] = int(lapse.stride)
    return out, meta


def load(path: str | os.PathLike) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """The snapshots saved in a run file: [(step, state_dict)], oldest first; [] for a run
    without them. Raises CheckpointError for a damaged file."""
    return read(path)[0]


def read(path: str | os.PathLike) -> tuple[list[tuple[int, dict[str, torch.Tensor]]], int | None]:
    """(load(path), the stride saved with them or None). Raises CheckpointError."""
    from karp_models.train.checkpoints import _read_tensors
    from karp_models.train.headers import CheckpointError, parse_metadata, read_header

    path = Path(path)
    header, metadata = read_header(path)
    names = [k for k in header if k.startswith(PREFIX)]
    try:
        entry = parse_metadata(path, metadata).get(META_KEY, {})
        steps = [int(s) for s in entry.get("steps", [])]
        stride = int(entry["stride"]) if entry.get("stride") is not None else None
        if stride is not None and stride < 1:
            raise ValueError(f"stride {stride}")
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
    return [(s, out[s]) for s in sorted(out) if out[s]], stride
