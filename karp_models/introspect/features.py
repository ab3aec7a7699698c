"""What a CNN computes for one input: class probabilities, first-layer filters, feature maps of every
layer, activation maximisation, and the first layer's filters across a training run.

Cites: Zeiler & Fergus 2014 (feature maps and filters); Erhan et al. 2009 and Olah et al., "Feature
Visualization", Distill 2017 (activation maximisation with jitter, L2/total-variation
regularisation and blurring: transformation robustness and frequency penalties, as in Lucid).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.introspect.hooks import capture, layer as get_layer

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


# ---------------------------------------------------------------------------- activation maximisation


@dataclass(frozen=True)
class Maximised:
    image: np.ndarray        # (C, H, W) float32 in [0, 1]
    objective: list[float]   # the objective at every step (rising means it worked)
    target: str              # in words: "channel 3 of features.stage1", "class Sneaker"


def _blur(x: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    k = torch.arange(-1, 2, dtype=x.dtype, device=x.device)
    k = torch.exp(-k ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), k.view(1, 1, 1, 3).repeat(C, 1, 1, 1), groups=C)
    return F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), k.view(1, 1, 3, 1).repeat(C, 1, 1, 1), groups=C)


class _Reached(Exception):
    pass


def _layer_output(net: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The output of layer `name` for x, without running the layers after it (the hook stops
    the forward pass by raising once it has the output)."""
    out: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: tuple, o: torch.Tensor | tuple) -> None:
        out.append(o[0] if isinstance(o, tuple) else o)
        raise _Reached

    h = get_layer(net, name).register_forward_hook(hook)
    try:
        net(x)
    except _Reached:
        pass
    finally:
        h.remove()
    if not out:
        raise ValueError(f"layer {name!r} was not reached by the forward pass")
    return out[0]


def maximise(model: nn.Module, *, layer: str | None = None, channel: int | None = None,
             class_index: int | None = None, shape: tuple[int, int, int] | None = None,
             steps: int = 128, lr: float = 0.2, jitter: int = 2, l2: float = 2e-3, tv: float = 1e-2,
             blur_every: int = 4, seed: int = 0,
             progress: Callable[[int, int, float], bool | None] | None = None) -> Maximised:
    """Optimise an input so it excites a channel of `layer` (its mean activation) or the logit
    of `class_index`, the way Olah et al. make it an image and not noise: random jitter
    (translation by up to `jitter` pixels each step), an L2 and a total-variation penalty, and a
    light blur every `blur_every` steps. The input is sigmoid(p), so it stays in [0, 1].

    The model is copied first (hooks and requires_grad on a copy: a cached, shared model is
    never touched). progress(step, steps, objective) may return True to stop early.
    """
    if (class_index is None) == (layer is None or channel is None):
        raise ValueError("give either class_index, or layer and channel")
    net = copy.deepcopy(model).eval().float().cpu()
    for p in net.parameters():
        p.requires_grad_(False)
    cfg = getattr(net, "config", None)
    if shape is None:
        if cfg is None:
            raise ValueError("give shape=(C, H, W) for a model without a config")
        shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    g = torch.Generator().manual_seed(seed)
    p = (0.1 * torch.randn((1,) + tuple(shape), generator=g)).requires_grad_(True)  # (1, C, H, W)
    opt = torch.optim.Adam([p], lr=lr)
    history: list[float] = []
    target = f"class {class_index}" if class_index is not None else f"channel {channel} of {layer}"
    for i in range(steps):
        x = torch.sigmoid(p)
        if jitter:
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
            x_in = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        else:
            x_in = x
        if class_index is not None:
            logits, _ = net(x_in)
            obj = logits[0, class_index]
        else:
            a = _layer_output(net, layer, x_in)
            if channel >= a.shape[1]:
                raise ValueError(f"{layer} has {a.shape[1]} channels; channel {channel} does not exist")
            obj = a[0, channel].mean()
        tv_loss = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
        loss = -obj + l2 * ((x - 0.5) ** 2).sum() + tv * tv_loss * x[0, 0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if blur_every and (i + 1) % blur_every == 0 and i + 1 < steps:
            with torch.no_grad():                                     # blur the image, map back to p
                xb = _blur(torch.sigmoid(p)).clamp(1e-4, 1 - 1e-4)
                p.copy_(torch.log(xb / (1 - xb)))
        history.append(float(obj.detach()))
        if progress is not None and progress(i + 1, steps, history[-1]):
            break
    image = torch.sigmoid(p).detach()[0].numpy().astype(np.float32)
    return Maximised(image=image, objective=history, target=target)


# ---------------------------------------------------------------------------- filter evolution


def evolution_scale(snapshots: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """First-layer weights over training [(step, (O, C, kh, kw))] -> the scale (O,) to pass to
    filter_images for every step: each filter's largest |w| over the run, so growth shows."""
    ws = np.stack([np.asarray(w, np.float32) for _, w in snapshots])  # (T, O, C, kh, kw)
    return np.abs(ws).reshape(ws.shape[0], ws.shape[1], -1).max(2).max(0)  # (O,)
