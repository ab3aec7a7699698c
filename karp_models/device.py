"""Device choice (CUDA > Apple MPS > CPU), its description in words, precision and thread policy.

Precision follows PyTorch's AMP recipe: autocast to bf16 (or fp16 with a GradScaler) on CUDA,
plain fp32 elsewhere.
"""
from __future__ import annotations

import contextlib
import re
import os
from typing import ContextManager

import torch

from karp_models.i18n import _, ngettext

# --- choice


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU.

    Args:
        prefer: 'cuda', 'mps' or 'cpu' to force one (falls back to the CPU if it is absent);
            the environment variable KARP_DEVICE does the same.
    """
    prefer = (prefer or os.environ.get("KARP_DEVICE") or "").lower() or None
    if prefer == "cpu":
        return torch.device("cpu")
    if prefer in (None, "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if prefer in (None, "mps") and mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_cores() -> int:
    """Cores this process may use (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def describe_device(device: torch.device | None = None) -> str:
    """The device in words: GPU name and memory, or CPU cores and threads."""
    device = device or pick_device()
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return _cuda_words(p.name, p.total_memory / 2**30, amp_label(device))
    if device.type == "mps":
        return _("GPU: Apple silicon (Metal / MPS, float32)")
    return _cpu_words(cpu_cores(), torch.get_num_threads())


def _cuda_words(name: str, gib: float, precision: str) -> str:
    return _("GPU: {name}, {gib:.1f} GiB (CUDA, {precision})").format(name=name, gib=gib,
                                                                        precision=precision)


def _cpu_words(cores: int, threads: int) -> str:
    return ngettext("CPU: {cores} cores, {threads} torch thread, float32 (no GPU found)",
                    "CPU: {cores} cores, {threads} torch threads, float32 (no GPU found)",
                    threads).format(cores=cores, threads=threads)


_CPU = re.compile(r"CPU: (\d+) cores, (\d+) torch threads?, float32 \(no GPU found\)")
_CUDA = re.compile(r"GPU: (.+), ([\d.]+) GiB \(CUDA, (float32|mixed precision \w+)\)")


def localised(description: str) -> str:
    """A description describe_device wrote in English (a checkpoint's metadata keeps one) in the
    current language; anything else unchanged."""
    if m := _CPU.fullmatch(description):
        return _cpu_words(int(m[1]), int(m[2]))
    if m := _CUDA.fullmatch(description):
        precision = m[3] if m[3] == "float32" else _("mixed precision {dtype}").format(
            dtype=m[3].split()[-1])
        return _cuda_words(m[1], float(m[2]), precision)
    if description == "GPU: Apple silicon (Metal / MPS, float32)":
        return _(description)
    return description


# --- precision


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype for training: bf16 where CUDA supports it, else fp16; None off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def amp_label(device: torch.device) -> str:
    dt = amp_dtype(device)
    return "float32" if dt is None else _("mixed precision {dtype}").format(
        dtype=str(dt).removeprefix("torch."))


def autocast(device: torch.device, enabled: bool = True) -> ContextManager:
    """torch.autocast on CUDA with amp_dtype(device); a no-op context elsewhere."""
    dt = amp_dtype(device)
    if not enabled or dt is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dt)


def needs_grad_scaler(device: torch.device) -> bool:
    """fp16 autocast needs loss scaling; bf16 and fp32 do not."""
    return amp_dtype(device) == torch.float16


def prefers_channels_last(model: torch.nn.Module) -> bool:
    """Whether `model` runs faster in NHWC (channels_last): models with spatial feature maps
    (CNNs declare them in `feature_layers`) do on oneDNN and cuDNN."""
    return bool(getattr(model, "feature_layers", None))


# --- threads


def app_threads(cores: int | None = None) -> int:
    """Torch threads for the web app: leave one core to the server on small machines.

    On 2 cores this gives 1 thread, so a training job never starves Streamlit's event loop;
    on bigger machines all but one core (at most 8: small models gain little beyond that).
    """
    cores = cores or cpu_cores()
    return max(1, min(8, cores - 1))


def set_threads(for_app: bool = False) -> int:
    """Set torch's intra-op thread count (KARP_THREADS overrides) and return it."""
    env = os.environ.get("KARP_THREADS")
    n = int(env) if env else (app_threads() if for_app else cpu_cores())
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
