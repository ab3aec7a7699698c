"""Activation maximisation: change an input image, not the network, until one channel of a layer
or one class score is as large as it can be made, and say plainly whether that worked.

Follows Olah, Mordvintsev & Schubert, "Feature Visualization" (Distill 2017) and its code, Lucid
(tensorflow/lucid, optvis) and its PyTorch port Lucent (greentfrapp/lucent, optvis/param): the
image is a Fourier spectrum scaled by 1/frequency (`fft_image`), so every frequency is equally
easy to change and high-frequency noise does not win; an RGB image's colours are decorrelated
(`to_valid_rgb`); a sigmoid keeps pixels in [0, 1]; random shifts, scales and turns make the
pattern robust rather than adversarial; and for the first 16 steps a ReLU lets gradient through
even where it is off (`redirected_relu_grad`), so a unit silent on the starting image still gets
started. Adapted to karp's 28x28 grayscale models: one channel (nothing to decorrelate), shifts
of 2 pixels where Lucid uses 8 on 224. The older pixel parameterisation with L2, total-variation
and blur penalties (Erhan et al. 2009; Mahendran & Vedaldi 2015) stays as an option to compare.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.i18n import _
from karp_models.introspect.hooks import layer as get_layer

PARAMS = ("fourier", "pixels")
REDIRECT_STEPS = 16          # Lucid redirects ReLU gradients for the first 16 steps only
# the starting noise: Lucid's faint spectrum (sd 0.01) first; a unit whose ReLU is off at every
# position of it (a first-layer edge detector on flat grey) starts from stronger noise instead
START_SD = {"fourier": (0.01, 0.1, 0.3, 1.0, 3.0), "pixels": (0.1, 0.3, 1.0, 3.0)}

# Lucid's square root of ImageNet's colour covariance (optvis/param/color.py), columns normalised
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR = _COLOR_SQRT / np.linalg.norm(_COLOR_SQRT, axis=0).max()


@dataclass(frozen=True)
class Maximised:
    image: np.ndarray        # (C, H, W) float32 in [0, 1]
    objective: list[float]   # the objective at every step, on that step's shifted/turned image
    target: str              # in words: "channel 3 of features.stage1", "class 7"
    start: float = float("nan")   # the objective on the starting image, as it is
    end: float = float("nan")     # ... and on the final image, as it is
    why: str = ""            # empty when the objective rose; otherwise why it did not, in words

    @property
    def rose(self) -> bool:
        return not self.why


# ---------------------------------------------------------------------------- parameterisations


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """|frequency| in cycles per pixel of every coefficient of a real 2-D FFT of an h x w image:
    (h, w // 2 + 1), as torch.fft.rfft2 lays them out (Lucid's rfft2d_freqs)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


class FourierImage(nn.Module):
    """An image (1, C, H, W) in [0, 1] made from a learnable spectrum (Lucid's fft_image).

    Each coefficient is scaled by 1 / max(|f|, 1 / max(H, W)) ** decay_power, so a step of the
    optimiser changes coarse and fine structure alike (natural images have this 1/f spectrum);
    the inverse FFT is orthonormal and divided by 4 (Lucid's constant: less saturation). Three
    channels are mixed by Lucid's colour decorrelation matrix; one channel is used as it is.
    The sigmoid maps to [0, 1]. sd: the starting spectrum's standard deviation.
    """

    def __init__(self, shape: tuple[int, int, int], *, sd: float = 0.01, decay_power: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        C, H, W = shape
        self.size = (H, W)
        f = rfft2d_freqs(H, W)
        scale = 1.0 / np.maximum(f, 1.0 / max(H, W)) ** decay_power
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32)[None, None, :, :, None])
        self.spectrum = nn.Parameter(sd * torch.randn((1, C) + f.shape + (2,), generator=generator))
        self.register_buffer("color", torch.from_numpy(_COLOR) if C == 3 else None)

    def forward(self) -> torch.Tensor:
        z = torch.view_as_complex(self.spectrum * self.scale)           # (1, C, H, W // 2 + 1)
        x = torch.fft.irfft2(z, s=self.size, norm="ortho") / 4.0        # (1, C, H, W)
        if self.color is not None:                                      # decorrelated -> RGB
            x = torch.einsum("bchw,dc->bdhw", x, self.color)
        return torch.sigmoid(x)


class PixelImage(nn.Module):
    """An image (1, C, H, W) in [0, 1] as sigmoid(p), one free number per pixel (the plain way)."""

    def __init__(self, shape: tuple[int, int, int], *, sd: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = nn.Parameter(sd * torch.randn((1,) + tuple(shape), generator=generator))

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.p)

    @torch.no_grad()
    def blur(self) -> None:
        """A light 3x3 Gaussian blur of the image, written back into p."""
        x = _blur(torch.sigmoid(self.p)).clamp(1e-4, 1 - 1e-4)
        self.p.copy_(torch.log(x / (1 - x)))


def _blur(x: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    k = torch.exp(-torch.arange(-1, 2, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.device)
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), k.view(1, 1, 1, 3).repeat(C, 1, 1, 1), groups=C)
    return F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), k.view(1, 1, 3, 1).repeat(C, 1, 1, 1), groups=C)


# ---------------------------------------------------------------------------- robustness


def transform(x: torch.Tensor, g: torch.Generator, *, jitter: int, scale: float = 0.0,
              degrees: float = 0.0) -> torch.Tensor:
    """x (1, C, H, W) shifted by up to `jitter` pixels (wrapping round, as the Fourier image
    does), then scaled by 1 +- `scale` and turned by up to +-`degrees` about its centre (edges
    repeated): Lucid's transformation robustness, one random draw per call."""
    if jitter:
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if scale or degrees:
        s = 1 + scale * (2 * float(torch.rand((), generator=g)) - 1)
        a = math.radians(degrees * (2 * float(torch.rand((), generator=g)) - 1))
        theta = torch.tensor([[[math.cos(a) / s, -math.sin(a) / s, 0.0],
                               [math.sin(a) / s, math.cos(a) / s, 0.0]]], dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x


# ---------------------------------------------------------------------------- redirected ReLU


class _RedirectedReLUFn(torch.autograd.Function):
    """ReLU forward; backward as Lucid's redirected_relu_grad: the ReLU's own gradient when any
    of it gets through for that image, otherwise the incoming gradient wherever it would raise
    the ReLU's input (the optimiser descends, so a negative gradient raises it)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor: 
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        relu_g = torch.where(x > 0, g, torch.zeros_like(g))
        redirected = torch.where((x < 0) & (g > 0), torch.zeros_like(g), g)
        passes = relu_g.flatten(1).abs().sum(1) > 0                     # (B,)
        return torch.where(passes.view(-1, *[1] * (g.dim() - 1)), relu_g, redirected)


class _RedirectedReLU(nn.Module):
    def __init__(self, on: list[bool]) -> None:
        super().__init__()
        self.on = on                                                    # shared switch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RedirectedReLUFn.apply(x) if self.on[0] and x.requires_grad else F.relu(x)


def _redirect_relus(net: nn.Module, on: list[bool]) -> int:
    """Replace every nn.ReLU module of `net` (a copy) by one whose gradient can be redirected
    while on[0]; returns how many. Functional F.relu calls are not reached."""
    n = 0
    for name, m in list(net.named_modules()):
        for child_name, child in list(m.named_children()):
            if type(child) is nn.ReLU:
                setattr(m, child_name, _RedirectedReLU(on))
                n += 1
    return n


# ---------------------------------------------------------------------------- the optimisation


class _Reached(Exception):
    pass


def layer_output(net: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
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
             param: str = "fourier", steps: int = 128, lr: float | None = None, jitter: int = 2,
             scale: float = 0.05, degrees: float = 5.0, l2: float = 0.0, tv: float = 0.0,
             blur_every: int = 0, redirect: bool = True, seed: int = 0,
             progress: Callable[[int, int, float], bool | None] | None = None) -> Maximised:
    """Optimise an input so the mean activation of `channel` of `layer`, or the logit of
    `class_index`, grows as large as it can (Olah et al. 2017; Lucid's render_vis with Adam).

    Args:
        shape: the input (C, H, W); default from the model's config (in_channels, image_size).
        param: 'fourier' (Lucid's default: a 1/f-scaled spectrum; lr default 0.05) or 'pixels'
            (one number per pixel; lr default 0.2), both through a sigmoid into [0, 1].
        jitter, scale, degrees: random shift (pixels), scaling (1 +- scale) and turn (+-degrees)
            applied at every step before the model sees the image.
        l2, tv: penalties on the distance from grey (summed) and on the mean jump between
            neighbours (times the pixel count); blur_every: blur the image every n steps
            (pixels only). All 0 by default: the Fourier image needs none of them.
        redirect: let inactive nn.ReLU modules pass gradient for the first 16 steps (Lucid).
        progress: progress(step, steps, objective); returning True stops early.
    Returns:
        Maximised(image (C, H, W) in [0, 1], objective per step, target, start and end objective
        on the untransformed image, why: '' when it rose, else the reason in words).
    Raises:
        ValueError for a missing target, an unknown param, a missing shape or channel.
    The model is copied first (hooks, requires_grad and ReLUs change on the copy only: a
    cached, shared model is never touched).
    """
    if (class_index is None) == (layer is None or channel is None):
        raise ValueError("give either class_index, or layer and channel")
    if param not in PARAMS:
        raise ValueError(f"param must be one of {PARAMS}, not {param!r}")
    net = copy.deepcopy(model).eval().float().cpu()
    for p in net.parameters():
        p.requires_grad_(False)
    if shape is None:
        cfg = getattr(net, "config", None)
        if cfg is None:
            raise ValueError("give shape=(C, H, W) for a model without a config")
        shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    on = [redirect]
    redirected = _redirect_relus(net, on) if redirect else 0
    target = f"class {class_index}" if class_index is not None else f"channel {channel} of {layer}"

    def objective(x: torch.Tensor) -> torch.Tensor:
        if class_index is not None:
            return net(x)[0][0, class_index]
        a = layer_output(net, layer, x)
        if channel >= a.shape[1]:
            raise ValueError(f"{layer} has {a.shape[1]} channels; channel {channel} does not exist")
        return a[0, channel].mean()

    g = torch.Generator().manual_seed(seed)
    for sd in START_SD[param]:             # faint noise first; stronger if the unit is silent on it
        image = (FourierImage if param == "fourier" else PixelImage)(shape, sd=sd, generator=g)
        with torch.no_grad():
            start = float(objective(image()))
        if start != 0:
            break
    opt = torch.optim.Adam(image.parameters(), lr=lr or (0.05 if param == "fourier" else 0.2))
    history: list[float] = []
    for i in range(steps):
        on[0] = redirect and i < REDIRECT_STEPS
        x = image()
        obj = objective(transform(x, g, jitter=jitter, scale=scale, degrees=degrees))
        loss = -obj
        if l2:
            loss = loss + l2 * ((x - 0.5) ** 2).sum()
        if tv:
            d = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
            loss = loss + tv * d * x[0, 0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if blur_every and isinstance(image, PixelImage) and (i + 1) % blur_every == 0 and i + 1 < steps:
            image.blur()
        history.append(float(obj.detach()))
        if progress is not None and progress(i + 1, steps, history[-1]):
            break
    on[0] = False
    with torch.no_grad():
        x = image()
        end = float(objective(x))
    why = _why_not(start, end, history, penalised=bool(l2 or tv or (blur_every and param == "pixels")),
                   relu_redirected=redirected > 0)
    return Maximised(image=x[0].numpy().astype(np.float32), objective=history, target=target,
                     start=start, end=end, why=why)


def _why_not(start: float, end: float, history: list[float], *, penalised: bool,
             relu_redirected: bool) -> str:
    """'' when the objective rose; otherwise the most likely reason, in words a person can act on."""
    if end > start + 1e-3 * max(1.0, abs(start)):
        return ""
    if history and max(abs(v) for v in history) == 0 and end == 0:
        if relu_redirected:
            return _("it stayed at exactly 0: this unit's ReLU was off everywhere on every image tried, so "
                     "there was no gradient to follow (even with gradients let through inactive ReLUs for "
                     "the first {n} steps). It may be a 'dead' unit.").format(n=REDIRECT_STEPS)
        return _("it stayed at exactly 0: this unit's ReLU was off everywhere on every image tried, so there "
                 "was no gradient to follow. It may be a 'dead' unit.")
    if penalised:
        return _("the penalties (extreme pixels, jumps between neighbours, blur) cost more than this "
                 "unit gains: choose less regularisation, or the Fourier image, which needs none")
    return _("the optimiser found nothing better than where it started in these steps: try more "
             "steps, or another channel")
