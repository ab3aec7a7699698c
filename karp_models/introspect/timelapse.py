"""Replaying a run's time-lapse (train/timelapse.py). On one fixed image: at each snapshot, the
model's first-layer filters, feature maps, prediction, Grad-CAM and Integrated Gradients of one
fixed class, and how much each map already agrees with the final model's. On one fixed text: a
GPT's attention per layer and head, or a CharRNN's cells, at each snapshot (`at_snapshots`, the
same function the text pages use on the final model).

Agreement is the Spearman rank correlation of |map| with the final snapshot's |map| (the
similarity Adebayo et al. 2018, arXiv:1810.03292, use for their model-randomisation check, here
read forwards in training time: the randomised model is the early snapshot). It is 1 at the last
snapshot by definition, nan when a map is constant (e.g. Grad-CAM of a dead layer).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from karp_models.introspect.attribution import attribute, gradcam_layer
from karp_models.introspect.features import feature_maps, filter_weights, spatial_layers
from karp_models.introspect.similarity import spearman

T_ = TypeVar("T_")

METHODS = ("Grad-CAM", "Integrated Gradients")


@dataclass(frozen=True)
class Frame:
    """One snapshot's view of the image. filters: (O, C, kh, kw) or None; maps: {layer: (C, H, W)}
    for the first and the last spatial layer; probs: (n_classes,); attributions: {method: (H, W)}
    summed over channels, of class `target`; agreement: {method: Spearman with the last frame}."""

    step: int
    probs: np.ndarray
    filters: np.ndarray | None
    maps: dict[str, np.ndarray]
    attributions: dict[str, np.ndarray]
    agreement: dict[str, float]


def frames(model: nn.Module, snapshots: list[tuple[int, dict[str, torch.Tensor]]], x: torch.Tensor,
           target: int | None = None, *, n_steps: int = 50) -> tuple[int, list[Frame]]:
    """Each snapshot loaded into a private copy of `model` (strictly: same names and shapes)
    and looked at on x (1, C, H, W) in [0, 1]. target: the class to explain (default: the last
    snapshot's prediction), the same at every step so the maps are comparable.
    n_steps: Integrated Gradients' path steps. Returns (target, frames, oldest first).
    Raises ValueError for no snapshots, RuntimeError for a snapshot that does not fit `model`."""
    if not snapshots:
        raise ValueError("a time-lapse with no snapshots")
    m = copy.deepcopy(model).cpu().eval()
    layers = spatial_layers(m)
    layers = [layers[0], layers[-1]] if len(layers) > 1 else layers
    gradcam_layer(m)                                                   # ValueError when it has none
    raw = []
    for step, state in snapshots:
        m.load_state_dict(state, strict=True)
        probs, maps = feature_maps(m, x, layers)
        raw.append((step, probs, filter_weights(m), maps))
    if target is None:
        target = int(raw[-1][1].argmax())
    attrs = []
    for step, state in snapshots:
        m.load_state_dict(state, strict=True)
        attrs.append({k: attribute(m, x, target, k, n_steps=n_steps, shared=False).map for k in METHODS})
    last = attrs[-1]
    out = [Frame(step, probs, w, maps, a, {k: spearman(np.abs(a[k]), np.abs(last[k])) for k in METHODS})
           for (step, probs, w, maps), a in zip(raw, attrs)]
    return target, out


def at_snapshots(model: nn.Module, snapshots: list[tuple[int, dict[str, torch.Tensor]]],
                 look: Callable[[nn.Module], T_]) -> list[tuple[int, T_]]:
    """look(m) with each snapshot loaded strictly into a private eval-mode CPU copy `m` of
    `model` (the model itself is never changed), without gradients; [(step, result)], oldest
    first. E.g. look = lambda m: introspect.text.attention(m, ids) gives (L, H, T, T) per step;
    introspect.neurons.traces gives an RNN's states. Raises ValueError for no snapshots,
    RuntimeError for a snapshot that does not fit `model` (another architecture)."""
    if not snapshots:
        raise ValueError("a time-lapse with no snapshots")
    m = copy.deepcopy(model).cpu().eval()
    out = []
    with torch.no_grad():
        for step, state in snapshots:
            m.load_state_dict(state, strict=True)
            out.append((step, look(m)))
    return out
