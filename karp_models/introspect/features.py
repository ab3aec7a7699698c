"""What a CNN computes for one input: class probabilities, first-layer filters, feature maps of every
layer, and the first layer's filters across a training run (activation maximisation: maximise.py).

Cites: Zeiler & Fergus 2014 (feature maps and filters).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from karp_models.introspect.hooks import capture

# ---------------------------------------------------------------------------- prediction


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Softmax probabilities (n_classes,) float32 for one input x (1, C, H, W) or (C, H, W) in
    [0, 1], a tensor or an array."""
    dev = next(model.parameters()).device
    x = torch.as_tensor(x)
    logits, _ = model((x[None] if x.dim() == 3 else x).to(dev).float())
    return torch.softmax(logits.float()[0], -1).cpu().numpy()


def top_k(probs: np.ndarray, classes: tuple[str, ...] | list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most probable (class name, probability), most probable first."""
    idx = np.argsort(-probs, kind="stable")[:k]
    return [(str(classes[i]) if i < len(classes) else str(i), float(probs[i])) for i in idx]


# ---------------------------------------------------------------------------- filters


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first Conv2d the input meets (module order), with its name; None when there is none."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None


def filter_weights(model: nn.Module) -> np.ndarray | None:
    """The first conv layer's weights (out, in, kh, kw) float32, or None."""
    fc = first_conv(model)
    return None if fc is None else fc[1].weight.detach().float().cpu().numpy().copy()


def filter_images(w: np.ndarray, scale: float | np.ndarray | None = None) -> np.ndarray:
    """Weights (O, C, kh, kw) -> images in [0, 1]: 0.5 is a zero weight, symmetric scaling.

    C == 3 gives RGB (O, kh, kw, 3); otherwise the mean over input channels (O, kh, kw).
    scale: the |weight| that maps to 0 or 1, per filter (O,) or one number; default each
    filter's own max |w| (pass a shared scale to compare filters, or steps of training).
    """
    w = np.asarray(w, np.float32)
    if scale is None:
        scale = np.abs(w).reshape(len(w), -1).max(1)
    s = np.maximum(np.asarray(scale, np.float32), 1e-12).reshape(-1, 1, 1, 1) * np.ones((len(w), 1, 1, 1))
    img = 0.5 + 0.5 * w / s                                           # (O, C, kh, kw)
    img = np.clip(img, 0, 1)
    if w.shape[1] == 3:
        return img.transpose(0, 2, 3, 1)                              # (O, kh, kw, 3)
    return img.mean(1)                                                # (O, kh, kw)


# ---------------------------------------------------------------------------- feature maps

_TORCHVISION_LAYERS = {
    "ResNet": ["relu", "layer1", "layer2", "layer3", "layer4"],
}


def spatial_layers(model: nn.Module) -> list[str]:
    """Layers with spatial (C, H, W) outputs, in order: the model's `feature_layers`, or, for
    torchvision CNNs, the stages (ResNet's stem and layer1..4; MobileNet's features.i)."""
    inner = getattr(model, "net", model)                              # imagenet.ImageNetModel wraps
    prefix = "net." if inner is not model else ""
    names = list(getattr(model, "feature_layers", []) or [])
    if names:
        return names
    kind = type(inner).__name__
    if kind in _TORCHVISION_LAYERS:
        return [prefix + n for n in _TORCHVISION_LAYERS[kind]]
    feats = getattr(inner, "features", None)
    if isinstance(feats, nn.Sequential):
        return [f"{prefix}features.{i}" for i in range(len(feats))]
    return []


@torch.inference_mode()
def feature_maps(model: nn.Module, x: torch.Tensor, layers: list[str] | None = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One forward pass: (probabilities (n_classes,), {layer: maps (C, H, W) float32}).

    layers: default spatial_layers(model). Maps are the layer's outputs for this input.
    """
    layers = spatial_layers(model) if layers is None else layers
    dev = next(model.parameters()).device
    with capture(model, layers) as acts:
        logits, _ = model(x.to(dev).float())
    probs = torch.softmax(logits.float()[0], -1).cpu().numpy()
    return probs, {n: acts[n][0].float().cpu().numpy() for n in layers if n in acts}


def _gaps(gap: int | tuple[int, int]) -> tuple[int, int]:
    return (gap, gap) if isinstance(gap, int) else (int(gap[0]), int(gap[1]))


def tile(tiles: np.ndarray, cols: int, gap: int | tuple[int, int] = 1,
         fill: float | int = np.nan) -> np.ndarray:
    """Tiles (N, h, w[, C]) laid out in rows of `cols`, `gap` pixels apart ((gap_y, gap_x) for
    two sizes); no gap after the last row or column. Tile n sits at row n // cols, column
    n % cols, its top-left corner at (row * (h + gap_y), col * (w + gap_x)). Gaps and unused
    places hold `fill`; the result keeps the tiles' dtype.

    Returns: (rows * (h + gap_y) - gap_y, cols * (w + gap_x) - gap_x[, C]).
    """
    N, h, w = tiles.shape[:3]
    gy, gx = _gaps(gap)
    cols = max(1, min(cols, N))
    rows = -(-N // cols)
    out = np.full((rows * (h + gy) - gy, cols * (w + gx) - gx) + tiles.shape[3:], fill,
                  dtype=tiles.dtype)
    for n in range(N):
        r, c = divmod(n, cols)
        out[r * (h + gy):r * (h + gy) + h, c * (w + gx):c * (w + gx) + w] = tiles[n]
    return out


def tile_index(n: int, cols: int, h: int, w: int, gap: int | tuple[int, int] = 1) -> np.ndarray:
    """For a `tile` layout of n tiles of (h, w): the tile number at every pixel, -1 in gaps
    (the hover text of a tiled heatmap). Shape: as tile's (rows * (h + gap_y) - gap_y, ...)."""
    ids = np.broadcast_to(np.arange(n)[:, None, None], (n, h, w))
    return tile(ids, cols, gap, fill=-1)


def map_grid(maps: np.ndarray, cols: int | None = None, gap: int = 1) -> tuple[np.ndarray, int]:
    """Tile (C, H, W) maps into one 2-D image with NaN gaps (each map scaled to its own [0, 1]);
    returns (grid, cols). Channel c sits at row c // cols, column c % cols."""
    C, H, W = maps.shape
    cols = min(cols or int(np.ceil(np.sqrt(C))), C)
    lo = maps.reshape(C, -1).min(1)[:, None, None]
    hi = maps.reshape(C, -1).max(1)[:, None, None]
    norm = (maps - lo) / np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return tile(norm.astype(np.float32), cols, gap), cols


# ---------------------------------------------------------------------------- filter evolution


def evolution_scale(snapshots: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """First-layer weights over training [(step, (O, C, kh, kw))] -> the scale (O,) to pass to
    filter_images for every step: each filter's largest |w| over the run, so growth shows."""
    ws = np.stack([np.asarray(w, np.float32) for _, w in snapshots])  # (T, O, C, kh, kw)
    return np.abs(ws).reshape(ws.shape[0], ws.shape[1], -1).max(2).max(0)  # (O,)
