"""What a compressed model costs: its predictions, CPU latency (paired with the original's),
size on disk (zeros stored sparsely), and how far its Grad-CAM and IG maps moved."""
from __future__ import annotations

import io
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from karp_models.compress.base import EXPLAIN_METHODS
from karp_models.i18n import _
from karp_models.introspect.attribution import METHODS as ATTR_METHODS
from karp_models.introspect.attribution import attribute
from karp_models.introspect.evaluate import predict_probs
from karp_models.introspect.similarity import Similarity, compare

# ---------------------------------------------------------------------------- measuring


@torch.inference_mode()
def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Predicted classes (N,) int64 of images x (N, C, H, W), uint8 or float in [0, 1], on the CPU
    (a float model through Evaluate's `predict_probs`: BatchNorm folded, channels-last)."""
    if not _quantised(model):
        return predict_probs(model, x, device="cpu").argmax(-1)
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
        logits, _loss = model(xb)                                      # (B, n_classes)
        out.append(logits.argmax(-1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def _quantised(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def cpu_clock() -> bool:
    """Whether latencies are counted in the CPU time of the calling thread (torch on one thread:
    all of a forward's work runs on it, and time other programs take the core from it does not
    count; on a shared 2-core machine medians of wall time swung 3x between runs) rather than in
    wall time (several threads: work on the others would not be counted)."""
    return torch.get_num_threads() == 1


@torch.inference_mode()
def latency_ms(model: nn.Module, x1: torch.Tensor, *, warmup: int = 10, repeat: int = 50) -> float:
    """Median time in milliseconds of one batch-1 forward on the CPU (x1 (1, C, H, W) float),
    after `warmup` calls, over `repeat` calls, with torch's current thread count; the thread's CPU
    time on one thread, else wall time (`cpu_clock`)."""
    return paired_latency_ms(model, None, x1, warmup=warmup, repeat=repeat)[0]


@torch.inference_mode()
def paired_latency_ms(model: nn.Module, reference: nn.Module | None, x1: torch.Tensor, *, warmup: int = 10,
                      repeat: int = 100) -> tuple[float, float]:
    """(median ms of `model`, median ms of `reference`) per batch-1 forward on the CPU over
    `repeat` calls each, after `warmup` calls of each; the two take turns call by call, so a busy
    spell of a shared machine slows both alike and their ratio stays fair (nan for no reference).
    Timed by the thread's CPU time on one torch thread, else by wall time (`cpu_clock`).
    x1: (1, C, H, W) float."""
    clock = time.thread_time if cpu_clock() else time.perf_counter
    x1 = x1.float().cpu()
    runs = [m.eval() for m in (model, reference) if m is not None]
    for m in runs:
        for _i in range(warmup):
            m(x1)
    times: list[list[float]] = [[] for _m in runs]
    for _i in range(repeat):
        for m, ts in zip(runs, times):
            t0 = clock()
            m(x1)
            ts.append(clock() - t0)
    out = [statistics.median(ts) * 1e3 for ts in times]
    return out[0], out[1] if len(out) > 1 else float("nan")


def _saved_bytes(obj: Any) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


@dataclass(frozen=True)
class Size:
    """Bytes on disk of a model's state dict, serialised with torch.save (measured, not computed).

    dense: every tensor stored whole, zeros too (what a pruned model's file is as torch writes
    it). stored: each float tensor with zeros stored as a bitmask (1 bit per value, numpy's
    packbits) plus its non-zero values, when that is smaller, else whole: the file a sparse
    format would write. An int8 model is stored as it is (dense == stored)."""
    dense: int
    stored: int


def model_size(model: nn.Module) -> Size:
    """`Size` of `model`'s state dict."""
    sd = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    dense = _saved_bytes(sd)
    sparse: dict[str, Any] = {}
    changed = False
    for k, v in sd.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not v.is_quantized and v.numel() > 8:
            nz = v != 0
            n_nz = int(nz.sum())
            if n_nz * v.element_size() + (v.numel() + 7) // 8 < v.numel() * v.element_size():
                bits = torch.from_numpy(np.packbits(nz.flatten().numpy()))
                sparse[k] = {"mask": bits, "values": v[nz].clone(), "shape": tuple(v.shape)}
                changed = True
                continue
        sparse[k] = v
    return Size(dense, _saved_bytes(sparse) if changed else dense)

# ---------------------------------------------------------------------------- explanations


def explain_maps(model: nn.Module, x: torch.Tensor, targets: Sequence[int],
                 methods: Sequence[str] = EXPLAIN_METHODS, *, n_steps: int = 50) -> dict[str, np.ndarray]:
    """{method: maps (N, H, W)} for images x (N, C, H, W) float in [0, 1] and a target class each,
    by `attribution.attribute` on `model` (its own: hooks may go on it)."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for i, t in enumerate(targets):
        for m in methods:
            out[m].append(attribute(model, x[i:i + 1].float(), int(t), m, n_steps=n_steps, shared=False).map)
    return {m: np.stack(v) for m, v in out.items()}


def compare_maps(original: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> dict[str, list[Similarity]]:
    """{method: one Similarity per image}, the compressed model's map against the original's, as
    the sanity check compares them (|map| and, for signed methods, the signed map)."""
    names = (_("the original model's map"), _("the compressed model's map"))
    return {m: [compare(a, b, signed=ATTR_METHODS[m].signed, names=names) for a, b in zip(original[m], now[m])]
            for m in original}


def mean_similarity(sims: Sequence[Similarity], key: str = "Spearman |map|") -> float:
    """Mean of one similarity over images, leaving out those that cannot be judged (nan if none)."""
    v = [s.values[key] for s in sims if key in s.values]
    return float(np.mean(v)) if v else float("nan")
