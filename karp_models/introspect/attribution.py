"""Attributions for any registered image model, in Captum's call style: construct, then `.attribute`.

Cites: pytorch/captum (Saliency, IntegratedGradients, NoiseTunnel, GradientShap, DeepLift,
LayerGradCam, GuidedGradCam, Occlusion); Simonyan et al. 2013 (saliency), Sundararajan et al.
2017 (IG), Smilkov et al. 2017 (SmoothGrad), Lundberg and Lee 2017 (GradientSHAP), Shrikumar et
al. 2017 (DeepLift), Selvaraju et al. 2017 (Grad-CAM), Zeiler and Fergus 2014 (occlusion),
Abnar and Zuidema 2020 (attention rollout, for the ViT).

    explainer = make("Integrated Gradients", model)
    attr, delta = explainer.attribute(x, target=3, baselines=torch.zeros_like(x),
                                      n_steps=50, return_convergence_delta=True)

Models return (logits, loss); Captum wants a forward that returns logits, so every explainer
wraps the model in `Logits`. Hook-based methods (Grad-CAM, Guided Grad-CAM, DeepLift) put hooks
on the model's layers while they run, which another session's forward on the same cached model
would trip over, so they never run on the model they are given: `make` deep-copies it, and
`attribute` keeps one private copy per model (made once, used under a lock).
"""
from __future__ import annotations

import copy
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import (DeepLift, GradientShap, GuidedGradCam, IntegratedGradients,
                         LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency)
from torch import nn

from karp_models.introspect.attention import rollout
from karp_models.introspect.hooks import layer as get_layer

# ---------------------------------------------------------------------------- the model as Captum sees it


class Logits(nn.Module):
    """forward(x) -> logits (B, n_classes): a karp model (which returns (logits, loss)) for Captum."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def gradcam_layer(model: nn.Module) -> str:
    """Grad-CAM's layer: the last spatial map (`feature_layers[-1]`), or the ViT's patch embedding
    (its output is the (B, D, g, g) patch grid)."""
    names = list(getattr(model, "feature_layers", []) or [])
    if names:
        return names[-1]
    if hasattr(model, "patch_embed"):
        return "patch_embed"
    raise ValueError(f"{type(model).__name__} has no spatial layer for Grad-CAM")


# ---------------------------------------------------------------------------- explainers Captum lacks


class UpsampledGradCam:
    """Captum's LayerGradCam on `layer`, upsampled (bilinear) to the input's size: (B, 1, H, W)."""

    def __init__(self, forward_func: nn.Module, layer: nn.Module) -> None:
        self.gradcam = LayerGradCam(forward_func, layer)

    def attribute(self, inputs: torch.Tensor, target: int | None = None,
                  relu_attributions: bool = True, interpolate_mode: str = "bilinear") -> torch.Tensor:
        cam = self.gradcam.attribute(inputs, target=target, relu_attributions=relu_attributions)  # (B, 1, h, w)
        return LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode=interpolate_mode)


class AttentionRollout:
    """Attention rollout of a ViT (`forward_with_attention`), CLS row over the patches, upsampled
    to the input: (B, 1, H, W), non-negative. The target is ignored: rollout is class-agnostic."""

    def __init__(self, model: nn.Module, head_fusion: str = "mean") -> None:
        if not hasattr(model, "forward_with_attention") or not hasattr(model, "grid"):
            raise ValueError("attention rollout needs a ViT (forward_with_attention and grid)")
        self.model, self.head_fusion = model, head_fusion

    @torch.no_grad()
    def attribute(self, inputs: torch.Tensor, target: int | None = None) -> torch.Tensor:
        _, maps = self.model.forward_with_attention(inputs)
        r = rollout(maps, head_fusion=self.head_fusion)                # (B, 1 + P, 1 + P)
        gh, gw = self.model.grid
        cls = r[:, 0, 1:].reshape(-1, 1, gh, gw)                       # (B, 1, gh, gw)
        return F.interpolate(cls, size=tuple(inputs.shape[-2:]), mode="nearest")


# ---------------------------------------------------------------------------- the methods


@dataclass(frozen=True)
class Method:
    name: str
    short: str          # one line for the page
    signed: bool        # can the map be negative?


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("Saliency", "|gradient| of the class score: which pixels, nudged, change it most", False),
    Method("Integrated Gradients", "gradients summed along the path from a black image; sums to the score change",
           True),
    Method("SmoothGrad", "saliency averaged over 20 noisy copies of the image", False),
    Method("GradientSHAP", "IG from random baselines (black and noise): expected gradients", True),
    Method("DeepLift", "differences from a black image pushed back layer by layer", True),
    Method("Grad-CAM", "the last conv layer's maps (ViT: patch embedding) weighted by their gradients, upsampled",
           False),
    Method("Guided Grad-CAM", "Grad-CAM times guided backprop: sharp edges inside the Grad-CAM region", True),
    Method("Occlusion", "how much the score drops when a black patch (4x4 on 28x28) covers each place", True),
    Method("Attention rollout", "ViT only: attention multiplied through the layers, CLS to patches", False),
]}

GRADIENT_METHODS = tuple(n for n in METHODS if n != "Attention rollout")


def available(model: nn.Module) -> list[str]:
    """The methods that apply to `model` (attention rollout only for a ViT)."""
    names = list(GRADIENT_METHODS)
    if hasattr(model, "forward_with_attention") and hasattr(model, "grid"):
        names.append("Attention rollout")
    return names


HOOKED = frozenset({"Grad-CAM", "Guided Grad-CAM", "DeepLift"})
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


def make(name: str, model: nn.Module, *, layer: str | None = None, copy_model: bool = True):
    """The Captum explainer for method `name` on `model`; call `.attribute(x, target=...)` on it
    (the keyword arguments are Captum's; `attribute` below fills sensible defaults). Hook-based
    methods get a deep copy of `model` unless copy_model=False (the model is private already)."""
    if name == "Attention rollout":
        return AttentionRollout(model)
    if name in HOOKED and copy_model:
        model = copy.deepcopy(model)                                   # they hook layers while running
    fwd = Logits(model).eval()
    if name == "Saliency":
        return Saliency(fwd)
    if name == "Integrated Gradients":
        return IntegratedGradients(fwd)
    if name == "SmoothGrad":
        return NoiseTunnel(Saliency(fwd))
    if name == "GradientSHAP":
        return GradientShap(fwd)
    if name == "DeepLift":
        return DeepLift(fwd)
    if name == "Occlusion":
        return Occlusion(fwd)
    target_layer = get_layer(model, layer or gradcam_layer(model))
    if name == "Grad-CAM":
        return UpsampledGradCam(fwd, target_layer)
    if name == "Guided Grad-CAM":
        return GuidedGradCam(fwd, target_layer)
    raise KeyError(f"unknown attribution method {name!r}; choose from {list(METHODS)}")


def default_kwargs(name: str, x: torch.Tensor, *, n_steps: int = 50, seed: int = 0) -> dict:
    """The keyword arguments karp passes to `.attribute` for each method (Captum's names)."""
    zeros = torch.zeros_like(x)
    if name == "Integrated Gradients":
        return dict(baselines=zeros, n_steps=n_steps, return_convergence_delta=True)
    if name == "SmoothGrad":
        return dict(nt_type="smoothgrad", nt_samples=20, stdevs=0.15, nt_samples_batch_size=20)
    if name == "GradientSHAP":
        g = torch.Generator().manual_seed(seed)
        noise = torch.rand((4,) + tuple(x.shape[1:]), generator=g).to(x.device)
        return dict(baselines=torch.cat([zeros[:1], noise]), n_samples=20, stdevs=0.09,
                    return_convergence_delta=True)
    if name == "DeepLift":
        return dict(baselines=zeros, return_convergence_delta=True)
    if name == "Occlusion":
        C, H, W = x.shape[1:]
        k = max(2, min(H, W) // 7)                                     # 4 on 28x28, 2 on 8x8
        return dict(sliding_window_shapes=(C, k, k), strides=(C, max(1, k // 2), max(1, k // 2)),
                    baselines=0.0, perturbations_per_eval=256)
    return {}


# ---------------------------------------------------------------------------- running several at once


@dataclass(frozen=True)
class Attribution:
    method: str
    attr: np.ndarray          # (C, H, W) float32, the raw attribution of the input
    map: np.ndarray           # (H, W) summed over channels
    delta: float | None       # |convergence delta| (IG, DeepLift; GradientSHAP: mean over samples), else None
    seconds: float


@contextmanager
def seeded(seed: int):
    """Seed torch (SmoothGrad's noise) and numpy (GradientSHAP draws its baselines with
    np.random) for the block, then put both generators back as they were."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


@contextmanager
def explainer_for(method: str, model: nn.Module, *, shared: bool = True):
    """`with explainer_for(name, model) as e: e.attribute(...)`: hook-based methods run on the
    model's private copy under its lock when `shared`, else on `model` itself (a private model)."""
    if method in HOOKED and shared:
        private, lock = private_copy(model)
        with lock:
            yield make(method, private, copy_model=False)
    else:
        yield make(method, model, copy_model=False)


def attribute(model: nn.Module, x: torch.Tensor, target: int, method: str, *, seed: int = 0,
              n_steps: int = 50, shared: bool = True) -> Attribution:
    """One method's attribution of `target` for a single image x (1, C, H, W) in [0, 1].
    shared=False: `model` is the caller's own (e.g. a randomised copy), hooks may go on it."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"attribute takes one image (1, C, H, W), got {tuple(x.shape)}")
    device = next(model.parameters()).device
    x = x.to(device).float()
    t0 = time.perf_counter()
    kw = default_kwargs(method, x, n_steps=n_steps, seed=seed)
    with explainer_for(method, model, shared=shared) as explainer, seeded(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")                                # Captum's notes on hooks and requires_grad
        out = explainer.attribute(x, target=int(target), **kw)
    delta = None
    if isinstance(out, tuple):                                         # (attributions, delta per sample)
        out, d = out
        delta = float(d.abs().mean())
    a = out.detach().float().cpu()[0]
    if a.shape[0] != x.shape[1]:                                       # (1, H, W) maps: broadcast to C
        a = a.expand(x.shape[1], -1, -1) / x.shape[1]
    a = a.numpy().astype(np.float32)
    return Attribution(method, a, a.sum(0), delta, time.perf_counter() - t0)


def attribute_all(model: nn.Module, x: torch.Tensor, target: int, methods: Sequence[str], *,
                  seed: int = 0, shared: bool = True) -> dict[str, Attribution]:
    return {m: attribute(model, x, target, m, seed=seed, shared=shared) for m in methods}


def normalise(maps: dict[str, np.ndarray], *, percentile: float = 99.0) -> dict[str, np.ndarray]:
    """Each map divided by its `percentile` of |value| and clipped to [-1, 1], so maps whose units
    differ by orders of magnitude share one signed colour scale (Captum's visualisation does the same)."""
    out = {}
    for k, m in maps.items():
        s = float(np.percentile(np.abs(m), percentile)) or float(np.abs(m).max()) or 1.0
        out[k] = np.clip(m / s, -1.0, 1.0).astype(np.float32)
    return out
