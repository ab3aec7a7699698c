"""Attributions for any image model: one table of Captum explainers, each row citing its paper (pytorch/captum)."""
from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.i18n import N_, NC_, pgettext
from karp_models.introspect.attention import rollout
from karp_models.introspect.hooks import layer as get_layer
from karp_models.introspect.model_copies import fingerprint, inference_copy, private_copy  # noqa: F401 - re-exported



def captum_attr(name: str) -> Any:
    """A class of captum.attr, imported on first use: importing Captum (matplotlib with it) costs
    about a second, which pages that never explain (a first visit to Predict) should not pay."""
    import captum.attr

    return getattr(captum.attr, name)

# ---------------------------------------------------------------------------- the model as Captum sees it


class Logits(nn.Module):
    """forward(x) -> logits (B, n_classes): a karp model (which returns (logits, loss)) for Captum."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def gradcam_layer(model: nn.Module) -> str:
    """Grad-CAM's layer: a CNN's last spatial map (`feature_layers[-1]`); a ViT's last block's
    first LayerNorm (`blocks.<last>.ln_1`), whose patch tokens `make` folds back into the patch
    grid, as pytorch-grad-cam's ViT example does (`model.blocks[-1].norm1` with its
    reshape_transform). Not the last block's output: only its CLS token reaches the head, so the
    gradient on its patch tokens is 0; not the patch embedding: that is the input side, with
    nothing class-specific yet. Raises ValueError when the model has neither."""
    names = list(getattr(model, "feature_layers", []) or [])
    if names:
        return names[-1]
    blocks = list(getattr(model, "token_layers", []) or [])
    if blocks and hasattr(model, "grid") and hasattr(get_layer(model, blocks[-1]), "ln_1"):
        return f"{blocks[-1]}.ln_1"
    raise ValueError(f"{type(model).__name__} has no spatial layer for Grad-CAM")


def is_token_layer(model: nn.Module, name: str) -> bool:
    """Does layer `name` output tokens (B, 1 + P, D) of a ViT (inside one of its `token_layers`)?"""
    blocks = getattr(model, "token_layers", []) or []
    return hasattr(model, "grid") and any(name == b or name.startswith(b + ".") for b in blocks)


def is_vit(model: nn.Module) -> bool:
    """Can its attention be rolled out: it has `forward_with_attention` and a patch `grid`."""
    return hasattr(model, "forward_with_attention") and hasattr(model, "grid")

# ---------------------------------------------------------------------------- explainers Captum lacks


class UpsampledGradCam:
    """Captum's LayerGradCam on `layer`, upsampled (bilinear) to the input's size: (B, 1, H, W)."""

    def __init__(self, forward_func: nn.Module, layer: nn.Module) -> None:
        self.gradcam = captum_attr("LayerGradCam")(forward_func, layer)

    def attribute(self, inputs: torch.Tensor, target: int | None = None,
                  relu_attributions: bool = True, interpolate_mode: str = "bilinear") -> torch.Tensor:
        cam = self.gradcam.attribute(inputs, target=target, relu_attributions=relu_attributions)  # (B, 1, h, w)
        return captum_attr("LayerAttribution").interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode=interpolate_mode)


class AttentionRollout:
    """Attention rollout of a ViT (`forward_with_attention`), CLS row over the patches, upsampled
    to the input: (B, 1, H, W), non-negative. The target is ignored: rollout is class-agnostic."""

    def __init__(self, model: nn.Module, head_fusion: str = "mean") -> None:
        if not is_vit(model):
            raise ValueError("attention rollout needs a ViT (forward_with_attention and grid)")
        self.model, self.head_fusion = model, head_fusion

    @torch.no_grad()
    def attribute(self, inputs: torch.Tensor, target: int | None = None) -> torch.Tensor:
        _, maps = self.model.forward_with_attention(inputs)
        r = rollout(maps, head_fusion=self.head_fusion)                # (B, 1 + P, 1 + P)
        gh, gw = self.model.grid
        cls = r[:, 0, 1:].reshape(-1, 1, gh, gw)                       # (B, 1, gh, gw)
        return F.interpolate(cls, size=tuple(inputs.shape[-2:]), mode="nearest")

class TokenGrid:
    """A ViT layer's tokens as an image for Captum's layer methods. While `folded()` is active the
    layer's output (B, 1 + P, D) goes through `tap` (an nn.Identity, the layer to give Captum) as
    the patch grid (B, D, gh, gw), CLS token dropped, and is put back in token order after it:
    pytorch-grad-cam's ViT reshape_transform, done as a forward hook (removed on exit), so the
    model computes exactly what it did before."""

    def __init__(self, layer: nn.Module, grid: tuple[int, int]) -> None:
        self.layer, self.grid, self.tap = layer, tuple(grid), nn.Identity()

    def fold(self, _module: nn.Module, _inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        B, T, D = out.shape
        gh, gw = self.grid
        g = self.tap(out[:, 1:].reshape(B, gh, gw, D).permute(0, 3, 1, 2))   # (B, D, gh, gw)
        return torch.cat([out[:, :1], g.permute(0, 2, 3, 1).reshape(B, gh * gw, D)], 1)  # (B, 1 + P, D)

    @contextmanager
    def folded(self) -> Iterator[None]:
        handle = self.layer.register_forward_hook(self.fold)
        try:
            yield
        finally:
            handle.remove()


class OnTokenGrid:
    """An explainer built on `grid.tap`, run while the tokens are folded: `.attribute` as Captum's."""

    def __init__(self, explainer: Any, grid: TokenGrid) -> None:
        self.explainer, self.grid = explainer, grid

    def attribute(self, inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        with self.grid.folded():
            return self.explainer.attribute(inputs, **kwargs)


# ---------------------------------------------------------------------------- the method table

Explainer = Any     # a Captum attribution or one of the above: .attribute(inputs, target=..., **kwargs)


@dataclass(frozen=True)
class Method:
    """One attribution method: what the page says about it, how to build and run it, where it comes from."""
    name: str
    short: str                      # one line for the page
    abbrev: str                     # panel title in the 4-column grids
    signed: bool                    # can the map be negative?
    build: Callable[[nn.Module, nn.Module | None], Explainer]   # (Logits(model), layer or None) -> explainer
    paper: str
    defaults: Callable[[torch.Tensor, int, int], dict] = lambda x, n_steps, seed: {}   # -> .attribute kwargs
    hooks_layers: bool = False      # hooks the model's layers while running: needs a private copy
    needs_layer: bool = False       # build takes a layer (gradcam_layer(model) unless one is named)
    applies: Callable[[nn.Module], bool] = lambda model: True                         # for which models


def _ig(x: torch.Tensor, n_steps: int, seed: int) -> dict:
    return dict(baselines=torch.zeros_like(x), n_steps=n_steps, return_convergence_delta=True)


def _smoothgrad(x: torch.Tensor, n_steps: int, seed: int) -> dict:
    # the noise comes from torch's generator, which `attribute` seeds
    return dict(nt_type="smoothgrad", nt_samples=20, stdevs=0.15, nt_samples_batch_size=20)


def _gradient_shap(x: torch.Tensor, n_steps: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand((4,) + tuple(x.shape[1:]), generator=g).to(x.device)      # (4, C, H, W) in [0, 1)
    return dict(baselines=torch.cat([torch.zeros_like(x[:1]), noise]), n_samples=20, stdevs=0.09,
                return_convergence_delta=True)


def _deeplift(x: torch.Tensor, n_steps: int, seed: int) -> dict:
    return dict(baselines=torch.zeros_like(x), return_convergence_delta=True)


def _occlusion(x: torch.Tensor, n_steps: int, seed: int) -> dict:
    C, H, W = x.shape[1:]
    k = max(2, min(H, W) // 7)                                         # 4 on 28x28, 2 on 8x8
    return dict(sliding_window_shapes=(C, k, k), strides=(C, max(1, k // 2), max(1, k // 2)),
                baselines=0.0, perturbations_per_eval=256)


# names and abbreviations: Captum's, marked for the catalog in the context "method" (pages show
# them with title()); what each computes: a msgid (pages show it with _())
METHODS: dict[str, Method] = {m.name: m for m in [
    Method(NC_("method", "Saliency"), N_("|gradient| of the class score: which pixels, nudged, change it most"),
           NC_("method", "Saliency"), signed=False, build=lambda f, _: captum_attr("Saliency")(f),
           paper="Simonyan et al. 2013, arXiv:1312.6034"),
    Method(NC_("method", "Integrated Gradients"),
           N_("gradients summed along the path from a black image; sums to the score change"),
           NC_("method", "IG"), signed=True, build=lambda f, _: captum_attr("IntegratedGradients")(f), defaults=_ig,
           paper="Sundararajan et al. 2017, arXiv:1703.01365"),
    Method(NC_("method", "SmoothGrad"), N_("saliency averaged over 20 noisy copies of the image"),
           NC_("method", "SmoothGrad"), signed=False, build=lambda f, _: captum_attr("NoiseTunnel")(captum_attr("Saliency")(f)),
           defaults=_smoothgrad, paper="Smilkov et al. 2017, arXiv:1706.03825"),
    Method(NC_("method", "GradientSHAP"), N_("IG from random baselines (black and noise): expected gradients"),
           NC_("method", "SHAP"), signed=True, build=lambda f, _: captum_attr("GradientShap")(f), defaults=_gradient_shap,
           paper="Lundberg and Lee 2017, arXiv:1705.07874"),
    Method(NC_("method", "DeepLift"), N_("differences from a black image pushed back layer by layer"),
           NC_("method", "DeepLift"), signed=True, build=lambda f, _: captum_attr("DeepLift")(f), defaults=_deeplift,
           hooks_layers=True, paper="Shrikumar et al. 2017, arXiv:1704.02685"),
    Method(NC_("method", "Grad-CAM"), N_("the last conv layer's maps (ViT: last block's patch tokens) weighted "
                                         "by their gradients, upsampled"),
           NC_("method", "Grad-CAM"), signed=False, build=UpsampledGradCam, hooks_layers=True,
           needs_layer=True, paper="Selvaraju et al. 2017, arXiv:1610.02391"),
    Method(NC_("method", "Guided Grad-CAM"),
           N_("Grad-CAM times guided backprop: sharp edges inside the Grad-CAM region"),
           NC_("method", "Guided GC"), signed=True, build=lambda f, layer: captum_attr("GuidedGradCam")(f, layer), hooks_layers=True, needs_layer=True,
           paper="Selvaraju et al. 2017, arXiv:1610.02391; Springenberg et al. 2015, arXiv:1412.6806"),
    Method(NC_("method", "Occlusion"),
           N_("how much the score drops when a black patch (4x4 on 28x28) covers each place"),
           NC_("method", "Occlusion"), signed=True, build=lambda f, _: captum_attr("Occlusion")(f), defaults=_occlusion,
           paper="Zeiler and Fergus 2014, arXiv:1311.2901"),
    Method(NC_("method", "Attention rollout"), N_("ViT only: attention multiplied through the layers, CLS to patches"),
           NC_("method", "Rollout"), signed=False, build=lambda f, _: AttentionRollout(f.model), applies=is_vit,
           paper="Abnar and Zuidema 2020, arXiv:2005.00928"),
]}


def title(name: str) -> str:
    """A method's (or an abbreviation's) name as the current language writes it."""
    return pgettext("method", name)


def lookup(name: str) -> Method:
    """The table's row for `name`. Raises KeyError naming the known methods."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown attribution method {name!r}; choose from {list(METHODS)}") from None


def available(model: nn.Module) -> list[str]:
    """The methods that apply to `model`, in table order (attention rollout only for a ViT)."""
    return [m.name for m in METHODS.values() if m.applies(model)]

# ---------------------------------------------------------------------------- building one explainer
# Hook-based methods put hooks on the model's layers while they run, which another session's
# forward on the same cached model would trip over, so they never run on the model they are
# given: `make` deep-copies it, and `attribute` keeps one private copy per model (made once,
# used under a lock; model_copies.py).


def make(name: str, model: nn.Module, *, layer: str | None = None, copy_model: bool = True) -> Explainer:
    """The explainer for method `name` on `model`, built from its row of METHODS; call
    `.attribute(x, target=...)` on it with Captum's keyword arguments (`default_kwargs` has karp's):

        ig = make("Integrated Gradients", model)
        attr, delta = ig.attribute(x, target=3, baselines=torch.zeros_like(x), n_steps=50,
                                   return_convergence_delta=True)

    Hook-based methods get a deep copy of `model` unless copy_model=False (the model is private
    already). `layer` names the layer of Grad-CAM-like methods (default: `gradcam_layer`); a ViT's
    token layer is folded into its patch grid first (`TokenGrid`).
    Raises KeyError for an unknown name, ValueError when the model lacks the layer the method needs.
    """
    m = lookup(name)
    if m.hooks_layers and copy_model:
        model = copy.deepcopy(model)                                   # they hook layers while running
    if not m.needs_layer:
        return m.build(Logits(model).eval(), None)
    name = layer or gradcam_layer(model)
    if is_token_layer(model, name):
        grid = TokenGrid(get_layer(model, name), model.grid)
        return OnTokenGrid(m.build(Logits(model).eval(), grid.tap), grid)
    return m.build(Logits(model).eval(), get_layer(model, name))


def default_kwargs(name: str, x: torch.Tensor, *, n_steps: int = 50, seed: int = 0) -> dict:
    """The keyword arguments karp passes to `.attribute` for method `name` on x (1, C, H, W)
    (Captum's names; baselines are black images). Raises KeyError for an unknown name."""
    return lookup(name).defaults(x, n_steps, seed)


@contextmanager
def explainer_for(method: str, model: nn.Module, *, shared: bool = True) -> Iterator[Explainer]:
    """`with explainer_for(name, model) as e: e.attribute(...)`: hook-based methods run on the
    model's private copy under its lock when `shared`, else on `model` itself (a private model)."""
    if lookup(method).hooks_layers and shared:
        private, lock = private_copy(model)
        with lock:
            yield make(method, private, copy_model=False)
    else:
        yield make(method, model, copy_model=False)

# ---------------------------------------------------------------------------- running several at once


@dataclass(frozen=True)
class Attribution:
    method: str
    attr: np.ndarray          # (C, H, W) float32, the raw attribution of the input
    map: np.ndarray           # (H, W) summed over channels
    delta: float | None       # |convergence delta| (IG, DeepLift; GradientSHAP: mean over samples), else None
    seconds: float


@contextmanager
def seeded(seed: int) -> Iterator[None]:
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


def attribute(model: nn.Module, x: torch.Tensor, target: int, method: str, *, seed: int = 0,
              n_steps: int = 50, shared: bool = True) -> Attribution:
    """One method's attribution of `target` for a single image x (1, C, H, W) in [0, 1], with
    `default_kwargs`. shared=False: `model` is the caller's own (e.g. a randomised copy), hooks
    may go on it. Raises ValueError for a batch, KeyError for an unknown method."""
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
    """`attribute` for each of `methods`, in their order: {name: Attribution}."""
    return {m: attribute(model, x, target, m, seed=seed, shared=shared) for m in methods}


def normalise(maps: dict[str, np.ndarray], *, percentile: float = 99.0) -> dict[str, np.ndarray]:
    """Each map divided by its `percentile` of |value| and clipped to [-1, 1], so maps whose units
    differ by orders of magnitude share one signed colour scale (Captum's visualisation does the same).
    The scale comes from the finite values only; a value that is not finite stays nan (a gap)."""
    out = {}
    for k, m in maps.items():
        m = np.asarray(m, dtype=np.float32)
        a = np.abs(m[np.isfinite(m)])
        s = (float(np.percentile(a, percentile)) or float(a.max()) or 1.0) if a.size else 1.0
        out[k] = np.clip(np.where(np.isfinite(m), m, np.nan) / s, -1.0, 1.0).astype(np.float32)
    return out
