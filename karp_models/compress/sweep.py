"""The sweep: every pruned, fine-tuned and int8 model of a SweepConfig, measured as a Point."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from karp_models.compress.base import EXPLAIN_METHODS, KIND_NAMES, KINDS, Progress
from karp_models.compress.measure import (
    Size,
    compare_maps,
    cpu_clock,
    explain_maps,
    model_size,
    paired_latency_ms,
    predictions,
)
from karp_models.compress.prune import (
    channel_sparsity,
    finetune,
    make_permanent,
    prune_model,
    weight_sparsity,
)
from karp_models.compress.quantise import (
    dequantised_twin,
    quantize_dynamic,
    quantize_static,
)
from karp_models.i18n import _
from karp_models.introspect.evaluate import fused_for_inference
from karp_models.introspect.similarity import Similarity

# ---------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class SweepConfig:
    """What to try. sparsities: shares in (0, 1) (the original is the 0 point); finetune_steps 0:
    no fine-tune, else each pruned model also fine-tuned for that many steps; n_test: test images
    scored (a fixed seeded subset); n_calibration: training images for static int8;
    n_explain: test images whose Grad-CAM and IG are compared."""
    kinds: tuple[str, ...] = KINDS
    sparsities: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
    finetune_steps: int = 0
    int8: bool = True
    n_test: int = 1000
    n_calibration: int = 512
    n_explain: int = 4
    latency_repeats: int = 100
    finetune_lr: float = 0.01
    batch_size: int = 128

    def __post_init__(self) -> None:
        if any(k not in KINDS for k in self.kinds):
            raise ValueError(f"kinds must be among {KINDS}, got {self.kinds}")
        if any(not 0 < s < 1 for s in self.sparsities):
            raise ValueError(f"sparsities are shares in (0, 1), got {self.sparsities}")
        if self.finetune_steps < 0 or self.n_test < 1 or self.n_explain < 0 or self.n_calibration < 1:
            raise ValueError("finetune_steps and n_explain must be >= 0, n_test and n_calibration >= 1")


@dataclass(frozen=True)
class Point:
    """One compressed model, measured. kind: 'original' | 'unstructured' | 'structured' |
    'int8-dynamic' | 'int8-static'; sparsity: the share asked for (0 for the others);
    zero_weights / zero_channels: measured shares of conv+linear weights / conv channels at 0;
    agreement: share of test images on which it predicts what the original does; latency_ms:
    batch-1 median on the CPU (float models with BatchNorm folded, as int8 folds it); speedup:
    the original's latency over this one's, the two timed call by call in turns (paired_latency_ms;
    the original's own is against a copy of itself: 1 up to the timing's wobble);
    similarity: {method: one Similarity per explained image}; twin_agreement: int8 only, the
    share of test images on which the dequantised twin the explanations use predicts what the
    int8 model does."""
    key: str
    kind: str
    sparsity: float
    finetune_steps: int
    accuracy: float
    agreement: float
    size: Size
    latency_ms: float
    speedup: float
    zero_weights: float
    zero_channels: float
    similarity: dict[str, list[Similarity]] = field(default_factory=dict, hash=False)
    maps: dict[str, np.ndarray] = field(default_factory=dict, hash=False, repr=False)
    twin_agreement: float | None = None

    @property
    def label(self) -> str:
        """The point in words of the current language: 'channels 50% + 200 steps'."""
        name = _(KIND_NAMES[self.kind])
        if self.kind in KINDS:
            name = _("{kind} {share:.0%}").format(kind=name, share=self.sparsity)
            if self.finetune_steps:
                name = _("{point} + {steps} steps").format(point=name, steps=self.finetune_steps)
        return name


@dataclass(frozen=True)
class Sweep:
    points: list[Point]
    images: np.ndarray              # (n_explain, C, H, W) float in [0, 1]: the explained images
    labels: np.ndarray              # (n_explain,) their true classes
    targets: np.ndarray             # (n_explain,) the class explained: the original's prediction
    skipped: dict[str, str]         # kind -> why it could not be made (in words)
    n_test: int
    threads: int
    seconds: float
    cpu_clock: bool = True          # latencies in the thread's CPU time (one torch thread), else wall time

    @property
    def original(self) -> Point:
        return self.points[0]


def sweep(model: nn.Module, data: Any, cfg: SweepConfig, *, task_kind: str = "image",
          device: torch.device | str = "cpu", progress: Progress | None = None) -> Sweep:
    """Every point of `cfg` for a trained image classifier `model` (not changed) on `data` (an
    ImageData: its test split is scored, its train split fine-tunes and calibrates).

    Returns a Sweep: the original first, then each kind at each sparsity (and, with
    finetune_steps, the same fine-tuned), then int8 dynamic and static. A quantisation that
    cannot be made (no Linear layer, a model torch.fx cannot trace) is left out with its reason
    in `skipped`. Measured on the CPU with torch's current thread count.
    """
    from karp_models.train.tasks.base import fixed_subset

    t0 = time.perf_counter()
    base = copy.deepcopy(model).cpu().eval()
    n = len(data.test_y)
    idx = fixed_subset(n, min(cfg.n_test, n))
    x_test, y_test = data.test_x[idx], data.test_y[idx].numpy()
    x_float = (x_test[:1].float() / 255) if x_test.dtype == torch.uint8 else x_test[:1].float()
    ex_idx = fixed_subset(n, min(cfg.n_explain, n))
    x_ex = data.test_x[ex_idx]
    x_ex = x_ex.float() / 255 if x_ex.dtype == torch.uint8 else x_ex.float()
    ref_pred = predictions(base, x_test)
    with torch.no_grad():
        targets = base(x_ex)[0].argmax(-1).numpy() if len(x_ex) else np.zeros(0, dtype=np.int64)
    methods = tuple(m for m in EXPLAIN_METHODS if m != "Grad-CAM" or getattr(base, "feature_layers", None)
                    or getattr(base, "token_layers", None))
    plan: list[tuple[str, float, int]] = [("original", 0.0, 0)]
    for kind in cfg.kinds:
        for s in cfg.sparsities:
            plan.append((kind, s, 0))
            if cfg.finetune_steps:
                plan.append((kind, s, cfg.finetune_steps))
    if cfg.int8:
        plan += [("int8-dynamic", 0.0, 0), ("int8-static", 0.0, 0)]
    total, points, skipped = len(plan), [], {}
    reference = fused_for_inference(base)                       # the original, timed beside each point
    original_maps: dict[str, np.ndarray] = {}

    def measure(key: str, kind: str, s: float, steps: int, m: nn.Module, explained: nn.Module,
                twin_agreement: float | None = None) -> Point:
        nonlocal original_maps
        pred = predictions(m, x_test)
        fast = m if kind.startswith("int8") else fused_for_inference(m)
        lat, ref = paired_latency_ms(fast, reference, x_float, repeat=cfg.latency_repeats)  # the original
        # too: its speed-up against its own copy shows how much the timing wobbles here
        maps = explain_maps(explained, x_ex, targets, methods) if len(x_ex) else {}
        if kind == "original":
            original_maps = maps
        sims = compare_maps(original_maps, maps) if maps else {}
        return Point(key, kind, s, steps, float((pred == y_test).mean()), float((pred == ref_pred).mean()),
                     model_size(m), lat, ref / lat, weight_sparsity(explained), channel_sparsity(explained), sims, maps,
                     twin_agreement)

    for i, (kind, s, steps) in enumerate(plan):
        key = f"{kind}-{s:g}-{steps}"
        if progress:
            if steps:
                words = _("{kind} {share:.0%}, fine-tuning {steps} steps")
            elif kind in KINDS:
                words = _("{kind} {share:.0%}")
            else:
                words = "{kind}"
            progress(i, total, words.format(kind=_(KIND_NAMES[kind]), share=s, steps=steps))
        if kind == "original":
            points.append(measure(key, kind, s, 0, base, base))
        elif kind in KINDS:
            m = prune_model(base, kind, s)       # deterministic: the same masks with or without a fine-tune
            if steps:
                m = finetune(m, data, steps=steps, task_kind=task_kind, lr=cfg.finetune_lr,
                             batch_size=cfg.batch_size, device=device)
            m = make_permanent(m).cpu().eval()
            points.append(measure(key, kind, s, steps, m, m))
        else:
            try:
                if kind == "int8-dynamic":
                    q = quantize_dynamic(base)
                else:
                    calib = data.train_x[fixed_subset(len(data.train_y), min(cfg.n_calibration, len(data.train_y)))]
                    q = quantize_static(base, calib.float() / 255 if calib.dtype == torch.uint8 else calib.float())
            except ValueError as e:
                skipped[kind] = str(e)
                continue
            twin = dequantised_twin(base, kind)
            agree = float((predictions(twin, x_test) == predictions(q, x_test)).mean())
            points.append(measure(key, kind, s, 0, q, twin, agree))
    if progress:
        progress(total, total, _("done"))
    return Sweep(points, x_ex.numpy(), data.test_y[ex_idx].numpy(), targets, skipped, len(idx),
                 torch.get_num_threads(), time.perf_counter() - t0, cpu_clock())
