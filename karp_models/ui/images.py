"""Images for display: any model input or picture -> (H, W, 3) uint8, small ones enlarged with
nearest neighbour so the pixels stay visible (a 28x28 digit on a projector). Tiling lives in
karp_models.introspect.features (`tile`, `tile_index`): pure array maths, no Streamlit.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch


def hwc(img: np.ndarray | torch.Tensor) -> np.ndarray:
    """A model input (1, C, H, W), (C, H, W), (H, W, C) or (H, W) -> (H, W, C) in its own dtype.

    Channels first when the first axis has 1 or 3 entries and the last is not a channel axis."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if a.ndim == 4:                                                   # a batch of one
        a = a[0]
    if a.ndim == 2:
        return a[..., None]
    if a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)
    return a


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor along the first two axes."""
    return a if k == 1 else a.repeat(k, 0).repeat(k, 1)


def display(img: np.ndarray | torch.Tensor, *, scale: int = 1, side: int | None = None
            ) -> np.ndarray:
    """Any image as (H', W', 3) uint8 for st.image and go.Image.

    Args:
        img: uint8 in [0, 255] or float in [0, 1]; (1, C, H, W), (C, H, W), (H, W, C) or (H, W);
            1, 3 or 4 channels (alpha dropped).
        scale: integer nearest-neighbour enlargement.
        side: the longest side in pixels instead: nearest neighbour up, area average down.
    """
    a = hwc(img)
    if a.dtype != np.uint8:
        a = np.rint(np.clip(a.astype(np.float32) * 255, 0, 255)).astype(np.uint8)
    a = a[..., :3]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if side is not None:
        h, w = a.shape[:2]
        s = side / max(h, w)
        interp = cv2.INTER_NEAREST if s >= 1 else cv2.INTER_AREA
        return cv2.resize(np.ascontiguousarray(a), (max(1, round(w * s)), max(1, round(h * s))),
                          interpolation=interp)
    return np.ascontiguousarray(upscale(a, scale))


def grey(img: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any image as (H, W) float32 in [0, 1] (the mean of its channels)."""
    a = hwc(img)
    a = a.astype(np.float32) / (255 if a.dtype == np.uint8 else 1)
    return a[..., :3].mean(-1)
