"""The copies of a model that attributions run on (introspect/attribution.py): a private copy per
model for the hook-based methods (hooks would trip another session's forward on the shared
model), a faster inference copy (BatchNorm folded, channels_last), and a fingerprint of the
weights that keys the app's shared attribution cache (issue 25). Each is kept per model and
weights version (every in-place change of a parameter or buffer bumps it)."""
from __future__ import annotations

import copy
import hashlib
import threading
import weakref

import torch
from torch import nn

_PRIVATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PRIVATE_LOCK = threading.Lock()


def _version(model: nn.Module) -> tuple[int, ...]:
    """Bumped by every in-place change of a parameter or buffer (optimizer steps, load_state_dict)."""
    return tuple(t._version for t in (*model.parameters(), *model.buffers()))


def private_copy(model: nn.Module) -> tuple[nn.Module, threading.Lock]:
    """A deep copy of `model` kept per process for the hook-based methods, and the lock to hold
    while using it; copied again when the model's weights have changed since."""
    with _PRIVATE_LOCK:
        entry = _PRIVATE.get(model)
        if entry is None or entry[2] != _version(model):
            entry = (copy.deepcopy(model).eval(), threading.Lock(), _version(model))
            _PRIVATE[model] = entry
        return entry[0], entry[1]


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(model: nn.Module) -> str:
    """A hash (hex) of the model's class, parameter and buffer names, shapes, dtypes and values:
    equal for equal weights, different once any weight differs (a run retrained under the same
    name, an optimizer step). Computed once per model and weights version (a few ms per MB)."""
    with _PRIVATE_LOCK:
        entry = _FINGERPRINTS.get(model)
        if entry is not None and entry[1] == _version(model):
            return entry[0]
    version = _version(model)
    h = hashlib.blake2b(type(model).__qualname__.encode(), digest_size=16)
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        t = t.detach()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()
    with _PRIVATE_LOCK:
        _FINGERPRINTS[model] = (digest, version)
    return digest


def _fold_conv_bn(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d into the Conv2d registered just before it in the same
    parent (the BN replaced by an Identity), in place; how many were folded. Registration order
    is not data flow in every model: inference_copy checks the result against the original."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
                parent._modules[a], parent._modules[b] = fuse_conv_bn_eval(conv, bn), nn.Identity()
                folded += 1
    return folded


def _channels_last(_module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def inference_copy(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A private eval-mode copy of an image model that computes the same function faster on a
    CPU: each BatchNorm folded into the convolution before it (torch.nn.utils.fusion) and
    a CNN's convolutions in channels_last memory format (oneDNN's fast layout); the fast CNN's
    8 methods take about 0.6x the time. Checked on x (1, C, H, W) and a random image
    against `model` (outputs within 1e-4, relative); a copy that fails is replaced by a plain
    one. Kept per model and weights version; never mutate it."""
    with _PRIVATE_LOCK:
        entry = _TWINS.get(model)
        if entry is not None and entry[1] == _version(model) and entry[2] == tuple(x.shape[1:]):
            return entry[0]
    version = _version(model)
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    _fold_conv_bn(twin)
    # a CNN's convolutions only: a ViT's one patch embedding is slower so (2.5x its IG here)
    if x.dim() == 4 and sum(isinstance(m, nn.Conv2d) for m in twin.modules()) >= 2:
        twin = twin.to(memory_format=torch.channels_last)
        twin.register_forward_pre_hook(_channels_last)
    from karp_models.introspect.attribution import Logits

    probe = torch.cat([x.detach().float(), torch.rand_like(x, dtype=torch.float32)])
    with torch.no_grad():
        want, got = Logits(model)(probe).float(), Logits(twin)(probe).float()
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max().clamp(min=1.0))):
        twin = copy.deepcopy(model).eval()                 # folding changed the function: keep it plain
    with _PRIVATE_LOCK:
        _TWINS[model] = (twin, version, tuple(x.shape[1:]))
    return twin
