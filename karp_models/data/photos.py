"""Real photographs shipped with scikit-image (skimage.data), for trying models on everyday pictures."""
from __future__ import annotations

import functools

import numpy as np

from karp_models.i18n import N_

# name shown to users -> skimage.data function (all ship inside scikit-image; no download)
PHOTOS = {  # the names are msgids: pages show them through _()
    N_("cat"): "chelsea",
    N_("astronaut"): "astronaut",
    N_("coffee"): "coffee",
    N_("rocket"): "rocket",
    N_("cameraman"): "camera",
    N_("coins"): "coins",
    N_("galaxies"): "hubble_deep_field",
}


@functools.lru_cache(maxsize=1)
def _photos() -> dict[str, np.ndarray]:
    import skimage.data

    out = {}
    for name, fn in PHOTOS.items():
        try:
            img = np.asarray(getattr(skimage.data, fn)())
        except (AttributeError, OSError, ModuleNotFoundError, ValueError):  # absent in this skimage
            continue
        if img.ndim == 2:  # grayscale photo -> (H, W, 3)
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = np.ascontiguousarray(img[:, :, :3].astype(np.uint8, copy=False))  # (H, W, 3)
        img.setflags(write=False)  # shared between callers
        out[name] = img
    return out


def sample_photos() -> dict[str, np.ndarray]:
    """Name -> RGB uint8 photo (H, W, 3): cat, astronaut, coffee, rocket, cameraman, coins, galaxies.

    The arrays are shared and read-only; `.copy()` one before changing it.
    """
    return dict(_photos())
