"""Where a Vision Transformer's CLS token looks: its attention over the image patches per layer and
head as (grid_h, grid_w) maps, attention rollout over the layers, and overlays on the image.

Cites: Dosovitskiy et al. 2020 (the CLS token reads the patches; their Figure 6 shows its attention
on images), Abnar and Zuidema 2020 "Quantifying Attention Flow in Transformers" (rollout, computed
by karp_models.introspect.attention.rollout), Chefer et al. 2021 (why raw per-head maps alone
mislead: shown side by side here). Pure tensors and numpy, no streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.introspect.attention import rollout


@dataclass(frozen=True)
class ViTAttention:
    """One image through a ViT.

    probs: (n_classes,) softmax of the logits. cls_maps: (L, H, gh, gw) the CLS row of every
    layer's and head's attention over the patches, in the patch grid's layout. cls_self: (L, H)
    what the CLS token kept for itself (cls_maps[l, h].sum() + cls_self[l, h] == 1).
    rollout_map: (gh, gw) rollout's CLS row over the patches (the rest, rollout_self, stays on CLS).
    """

    probs: np.ndarray
    cls_maps: np.ndarray
    cls_self: np.ndarray
    rollout_map: np.ndarray
    rollout_self: float
    grid: tuple[int, int]
    patch_size: int

    @property
    def n_layer(self) -> int:
        return self.cls_maps.shape[0]

    @property
    def n_head(self) -> int:
        return self.cls_maps.shape[1]


def cls_rows(attentions: list[torch.Tensor], grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row 0 (CLS) of each layer's (B, H, 1 + P, 1 + P) map: (B, L, H, gh, gw) over the patches
    and (B, L, H) on CLS itself."""
    A = torch.stack([a.float() for a in attentions], 1)               # (B, L, H, 1 + P, 1 + P)
    row = A[:, :, :, 0, :]                                            # (B, L, H, 1 + P)
    gh, gw = grid
    return row[..., 1:].reshape(*row.shape[:3], gh, gw), row[..., 0]  # (B, L, H, gh, gw), (B, L, H)


def rollout_cls(attentions: list[torch.Tensor], grid: tuple[int, int], *, head_fusion: str = "mean",
                residual: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Rollout's CLS row: (B, gh, gw) over the patches and (B,) left on CLS itself."""
    r = rollout(attentions, head_fusion=head_fusion, residual=residual)  # (B, 1 + P, 1 + P)
    return r[:, 0, 1:].reshape(-1, *grid), r[:, 0, 0]


@torch.no_grad()
def vit_attention(model: nn.Module, x: torch.Tensor, *, head_fusion: str = "mean") -> ViTAttention:
    """Run one image (1, C, H, W) in [0, 1] through the ViT's explain path and collect its maps."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    p = next(model.parameters())
    logits, maps = model.forward_with_attention(x[:1].to(p.device, p.dtype))
    grid = tuple(model.grid)
    cls, self_ = cls_rows(maps, grid)
    roll, roll_self = rollout_cls(maps, grid, head_fusion=head_fusion)
    return ViTAttention(probs=F.softmax(logits.float(), -1)[0].cpu().numpy(),
                        cls_maps=cls[0].cpu().numpy(), cls_self=self_[0].cpu().numpy(),
                        rollout_map=roll[0].cpu().numpy(), rollout_self=float(roll_self[0]),
                        grid=grid, patch_size=int(model.config.patch_size))

# ---------------------------------------------------------------------------- overlays


def upsample(m: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """A (gh, gw) map (or (..., gh, gw) maps) at the image's (H, W): 'nearest' keeps the patches
    as blocks, 'bilinear' smooths across their borders."""
    t = torch.as_tensor(np.ascontiguousarray(m), dtype=torch.float32)
    lead = t.shape[:-2]
    t = t.reshape(-1, 1, *t.shape[-2:])
    kw = {"align_corners": False} if mode == "bilinear" else {}
    out = F.interpolate(t, size=size, mode=mode, **kw)
    return out.reshape(*lead, *size).numpy()


def normalise(m: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Scale to [0, 1] by vmax (default: the map's own maximum)."""
    top = float(m.max()) if vmax is None else float(vmax)
    return np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.55, colormap: str = "inferno",
            vmax: float | None = None, mode: str = "bilinear") -> np.ndarray:
    """The image in grey with the heat map coloured on top: (H, W, 3) uint8.

    Args:
        image: (H, W) or (H, W, C) in [0, 1] (or (C, H, W)). heat: (gh, gw) or (H, W), >= 0.
        vmax: the value drawn at full colour (default: the map's maximum).
    """
    import matplotlib

    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 3:
        img = img.mean(-1)                                            # grey underneath, colour is the heat
    H, W = img.shape
    if heat.shape != (H, W):
        heat = upsample(heat, (H, W), mode)
    rgb = matplotlib.colormaps[colormap](normalise(heat, vmax))[..., :3]  # (H, W, 3)
    grey = np.repeat(img[..., None], 3, -1)
    return (255 * np.clip((1 - alpha) * grey + alpha * rgb, 0, 1)).astype(np.uint8)
