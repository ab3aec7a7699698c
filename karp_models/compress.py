"""Making an image classifier smaller, and what it costs: magnitude pruning (unstructured and by
channel), an optional short fine-tune through the one Trainer, int8 quantisation, and for every
point its accuracy, size on disk, CPU latency and how its explanations moved.

Pruning is torch.nn.utils.prune: `global_unstructured` with L1 magnitude over every Conv2d and
Linear weight at once (Han et al. 2015, "Learning both Weights and Connections", arXiv:1506.02626,
whose retraining step is our fine-tune), and `ln_structured` with the L1 norm of each conv's
output filters, the same share in every conv (Li et al. 2017, "Pruning Filters for Efficient
ConvNets", arXiv:1608.08710). The masks stay attached while fine-tuning, so pruned weights stay 0.

int8 is torch.ao.quantization (Jacob et al. 2018, arXiv:1712.05877): dynamic quantisation of the
Linear layers (`quantize_dynamic`: int8 weights, activations quantised on the fly), and static
quantisation of convs and Linears in FX graph mode (`prepare_fx` / `convert_fx`, the "x86"
backend's default qconfig: per-channel symmetric int8 weights, HistogramObserver activations,
calibrated on training images). Checked on torch 2.14.1 for x86 CPUs: FX graph mode works
(with a DeprecationWarning: torch.ao.quantization is moving to torchao); PT2E does not
(`torch.ao.quantization.quantize_pt2e` is gone from torch and torchao is not installed).

An int8 model has no gradients (quantised kernels have no autograd), so its explanations are
computed on its *dequantised twin*: the float model with every quantised weight replaced by its
int8 value times its scale (the numbers the int8 kernels multiply with), activations in float.
The twin's predictions are compared with the int8 model's so a reader sees how close it is.

Explanations are compared with the original's exactly as the sanity check compares maps
(`similarity.compare`: Spearman, SSIM and HOG, Adebayo et al. 2018).
"""
from __future__ import annotations

import copy
import io
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from karp_models.i18n import N_, _
from karp_models.introspect.attribution import Logits, attribute
from karp_models.introspect.attribution import METHODS as ATTR_METHODS
from karp_models.introspect.evaluate import fused_for_inference, predict_probs
from karp_models.introspect.similarity import Similarity, compare

KINDS = ("unstructured", "structured")
KIND_NAMES = {"unstructured": N_("unstructured"), "structured": N_("channels"),
              "original": N_("original model"), "int8-dynamic": N_("int8 dynamic (Linear)"),
              "int8-static": N_("int8 static (conv + Linear)")}            # shown with _()
EXPLAIN_METHODS = ("Grad-CAM", "Integrated Gradients")
PRUNABLE = (nn.Conv2d, nn.Linear)

Progress = Callable[[int, int, str], None]   # (done, total, what is running now)

# ---------------------------------------------------------------------------- pruning


def prunable(model: nn.Module, kind: str) -> list[tuple[nn.Module, str]]:
    """(module, 'weight') pairs pruning acts on: every Conv2d and Linear weight (unstructured), or
    every Conv2d weight (structured, by output channel). Raises ValueError for an unknown kind or
    a model with nothing to prune."""
    if kind not in KINDS:
        raise ValueError(f"unknown pruning kind {kind!r}; choose from {KINDS}")
    types = PRUNABLE if kind == "unstructured" else (nn.Conv2d,)
    out = [(m, "weight") for m in model.modules() if isinstance(m, types)]
    if not out:
        raise ValueError(f"{type(model).__name__} has no {'conv or linear' if kind == 'unstructured' else 'conv'} "
                         f"layers to prune")
    return out


def prune_model(model: nn.Module, kind: str, amount: float) -> nn.Module:
    """A pruned deep copy of `model` (which is not changed), its masks still attached (so a
    fine-tune keeps the pruned weights at 0; `make_permanent` removes them).

    unstructured: the `amount` share of all conv and linear weights with the smallest |w|,
    chosen globally, set to 0 (round(amount * n) weights). structured: in every Conv2d, the
    round(amount * C_out) output filters with the smallest L1 norm set to 0, and the same
    channels of the BatchNorm2d right after it (its weight and bias), so a pruned channel outputs
    0 as if it were removed (alone, a zero filter comes out of BatchNorm as a constant map, which
    the next layer never saw: 30% of the fast CNN's channels pruned that way left 16% accuracy).
    Raises ValueError for an amount outside [0, 1) or an unknown kind."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount is a share of weights in [0, 1), got {amount}")
    m = copy.deepcopy(model)
    params = prunable(m, kind)
    if kind == "unstructured":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(amount))
    else:
        norms = dict(conv_norm_pairs(m))
        for mod, name in params:
            prune.ln_structured(mod, name, amount=float(amount), n=1, dim=0)
            bn = norms.get(mod)
            if bn is not None and bn.affine:                 # the channel outputs 0, as if removed
                keep = mod.weight_mask.flatten(1).any(1).to(bn.weight.dtype)    # (C_out,)
                prune.custom_from_mask(bn, "weight", keep)
                prune.custom_from_mask(bn, "bias", keep)
    return m


def conv_norm_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, the BatchNorm2d right after it) for each such pair of consecutive children (an
    nn.Sequential's, a ResNet block's conv1 -> bn1)."""
    out = []
    for mod in model.modules():
        kids = list(mod.children())
        out += [(a, b) for a, b in zip(kids, kids[1:])
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and a.out_channels == b.num_features]
    return out


def make_permanent(model: nn.Module) -> nn.Module:
    """Remove the pruning masks in place (the zeros become the parameters themselves); returns model."""
    for mod in model.modules():
        for name in [n[:-len("_orig")] for n, _p in mod.named_parameters(recurse=False) if n.endswith("_orig")]:
            prune.remove(mod, name)
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Share of conv and linear weights that are exactly 0."""
    ws = [m.weight.detach() for m in model.modules() if isinstance(m, PRUNABLE)]
    n = sum(w.numel() for w in ws)
    return sum(int((w == 0).sum()) for w in ws) / n if n else 0.0


def channel_sparsity(model: nn.Module) -> float:
    """Share of Conv2d output channels whose whole filter is 0."""
    zero = total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().flatten(1)                               # (C_out, C_in * k * k)
            zero += int((w == 0).all(1).sum())
            total += w.shape[0]
    return zero / total if total else 0.0

# ---------------------------------------------------------------------------- fine-tuning


class _QuickEval:
    """A task whose final evaluation is a fixed subset (the sweep measures accuracy itself):
    everything else is the task's own, as Distillation wraps a task."""

    def __init__(self, task: Any, max_batches: int = 1):
        self.task, self.max_batches = task, max_batches

    def evaluate(self, model: nn.Module, device: Any = None, split: str | None = None,
                 max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
        kw = {"split": split} if split else {}
        return self.task.evaluate(model, device, max_batches=self.max_batches, **kw)

    def __getattr__(self, name: str) -> Any:
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)


def finetune_config(steps: int, *, lr: float = 0.01, batch_size: int = 128, seed: int = 0) -> Any:
    """The fine-tune's TrainConfig: SGD (Nesterov momentum 0.9, weight decay 5e-4) at `lr` on a
    cosine schedule with no warm-up, label smoothing 0.1, no evaluations on the way."""
    from karp_models.train.trainer import TrainConfig

    return TrainConfig(steps=steps, batch_size=batch_size, optimizer="sgd", lr=lr, weight_decay=5e-4,
                       schedule="cosine", warmup=0.0, label_smoothing=0.1, eval_every=0, eval_batches=1,
                       seed=seed)


def finetune(model: nn.Module, data: Any, *, steps: int, task_kind: str = "image", lr: float = 0.01,
             batch_size: int = 128, seed: int = 0, device: torch.device | str = "cpu") -> nn.Module:
    """Train `model` in place for `steps` steps through the one Trainer and the model's Task
    (SGD with Nesterov momentum, cosine from `lr`, no warm-up, label smoothing 0.1, the task's
    augmentation: a short version of the fast CNN's recipe). Pruning masks stay attached, so
    pruned weights stay 0. Returns the model in eval mode, on `device`."""
    from karp_models.train.tasks import make_task
    from karp_models.train.trainer import Trainer

    if steps <= 0:
        return model.eval()
    task = _QuickEval(make_task(data, model, kind=task_kind))
    batch_size = min(batch_size, len(data.train_y))         # a person's own few images: a smaller batch
    cfg = finetune_config(steps, lr=lr, batch_size=batch_size, seed=seed)
    for _rec in Trainer(model, task, cfg, device).run(log_every=max(steps, 1)):
        pass
    return model.eval().to(memory_format=torch.contiguous_format)

# ---------------------------------------------------------------------------- int8


class KarpOutput(nn.Module):
    """A network that returns logits (a quantised GraphModule) as a karp model: forward(x,
    targets=None) -> (logits (B, n_classes), None)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.net(x), None


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao's notes that it moves to torchao and that reduce_range is deprecated: not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        yield


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """int8 dynamic quantisation of every nn.Linear (a copy; CPU): weights stored as int8 with one
    scale, activations quantised on the fly per batch. Raises ValueError when there is no Linear."""
    from torch.ao.quantization import quantize_dynamic as qd

    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(_("the model has no Linear layer to quantise"))
    with _quiet():        # BatchNorm folded first, as static int8 and the float latency fold it
        return qd(fused_for_inference(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


def quantize_static(model: nn.Module, calibration: torch.Tensor, batch_size: int = 64) -> nn.Module:
    """int8 static quantisation of convs and Linears in FX graph mode (`prepare_fx`, calibration on
    `calibration` (N, C, H, W) float in [0, 1], `convert_fx`; the x86 backend). Conv -> BatchNorm
    -> ReLU are fused first. Returns a KarpOutput over the int8 GraphModule (CPU only).
    Raises ValueError (in words) when torch.fx cannot trace the model."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    net = Logits(copy.deepcopy(model).cpu().eval()).eval()
    with _quiet():
        try:
            prepared = prepare_fx(net, get_default_qconfig_mapping("x86"), (calibration[:1].float(),))
        except Exception as e:  # noqa: BLE001 - torch.fx's many tracing errors, said in words
            raise ValueError(_("torch.fx cannot trace this model for static int8 ({error})").format(
                error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")) from e
        with torch.no_grad():
            for i in range(0, len(calibration), batch_size):
                prepared(calibration[i:i + batch_size].float())
        return KarpOutput(convert_fx(prepared)).eval()


def dequantised_twin(model: nn.Module, kind: str) -> nn.Module:
    """The float copy of `model` whose quantised weights hold their int8 values times their scale:
    for 'int8-static' every Conv2d and Linear weight per output channel (symmetric, as the x86
    qconfig's weight observer), for 'int8-dynamic' every Linear weight per tensor (the dynamic
    qconfig's). Per-channel symmetric rounding gives the same integers whether BatchNorm is
    folded into the conv first or not (it scales each output channel), so this is the int8 model's
    weights; its activations stay float. Differentiable: used for its explanations."""
    from torch.ao.quantization.observer import default_per_channel_weight_observer, default_weight_observer

    twin = copy.deepcopy(model).cpu().eval()
    types = PRUNABLE if kind == "int8-static" else (nn.Linear,)
    with torch.no_grad():
        for m in twin.modules():
            if not isinstance(m, types):
                continue
            w = m.weight
            per_channel = kind == "int8-static"
            obs = (default_per_channel_weight_observer if per_channel else default_weight_observer)()
            obs(w)
            scale, zp = obs.calculate_qparams()
            if per_channel:
                q = torch.fake_quantize_per_channel_affine(w, scale, zp.int(), 0, obs.quant_min, obs.quant_max)
            else:
                q = torch.fake_quantize_per_tensor_affine(w, float(scale), int(zp), obs.quant_min, obs.quant_max)
            w.copy_(q)
    return twin

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
