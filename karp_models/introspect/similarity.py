"""Can an attribution map be judged at all, and how alike are two maps.

A map that is zero everywhere, constant or not finite ranks no pixel above another: every
comparison (sanity check, adversarial maps) and every ranking (faithfulness) asks `judgeable`
first and says "cannot judge" with its reason instead of a number.

Two maps are compared as Adebayo et al. 2018, "Sanity Checks for Saliency Maps"
(arXiv:1810.03292, section 3) do: Spearman rank correlation (scipy), the structural similarity
index SSIM (scikit-image, Wang et al. 2004) and the Pearson correlation of the maps' histograms of
oriented gradients, HOG (scikit-image, Dalal and Triggs 2005), each on |map| and on the signed
map. Before SSIM and HOG a map is divided by its largest |value| (their `abs_grayscale_norm` and
`diverging_norm`): |map| in [0, 1], the signed map in [-1, 1]. Pure numpy, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from karp_models.i18n import N_, _

MEASURES = ("Spearman", "SSIM", "HOG")
KINDS = ("|map|", "signed")
DESCRIBE = {                                  # what each similarity looks at, for the page
    "Spearman": N_("do the pixels come in the same order"),
    "SSIM": N_("do the regions have the same brightness, contrast and shape (window 7x7)"),
    "HOG": N_("do the edges point the same ways"),
}

# ---------------------------------------------------------------------------- can it be judged


def judgeable(attr_map: np.ndarray) -> str | None:
    """None when `attr_map` ranks its pixels, else why it cannot be judged, as a predicate for
    "the map ...": has no pixels, has values that are not finite, is zero everywhere, or has one
    value everywhere (in the current language: show it as _("the map {why}"))."""
    a = np.asarray(attr_map)
    if a.size == 0:
        return _("has no pixels")
    if not np.isfinite(a).all():
        return _("has {n} values that are not numbers (NaN or infinite)").format(n=int((~np.isfinite(a)).sum()))
    if not a.any():
        return _("is zero everywhere, so no pixel counts more than another")
    if np.ptp(a) == 0:
        return _("has the same value ({value:.3g}) everywhere, so no pixel counts more than another").format(
            value=float(a.flat[0]))
    return None


def judge_all(maps: dict[str, np.ndarray]) -> dict[str, str]:
    """{name: why} for the maps that cannot be judged (the others are left out)."""
    return {k: r for k, m in maps.items() if (r := judgeable(m)) is not None}

# ---------------------------------------------------------------------------- one measure


def _scaled(m: np.ndarray, absolute: bool) -> np.ndarray:
    m = np.abs(m) if absolute else m
    return (m / np.abs(m).max()).astype(np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of one shape (nan when either is constant)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy.stats import spearmanr   # lazy: scipy.stats costs a second on a first page

    return float(spearmanr(np.ravel(a), np.ravel(b)).statistic)


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float) -> float:
    """SSIM of two (H, W) maps on `data_range`, with skimage's 7x7 window (smaller on tiny maps;
    nan below 3x3)."""
    win = min(7, *a.shape)
    win -= 1 - win % 2                                                # odd
    if win < 3:
        return float("nan")
    from skimage.metrics import structural_similarity   # lazy: skimage and scipy.ndimage cost a second

    return float(structural_similarity(a, b, data_range=data_range, win_size=win))


def hog_features(m: np.ndarray) -> np.ndarray:
    """HOG of an (H, W) map: 9 orientations, cells of about a seventh of the side (4x4 pixels
    on 28x28), blocks of 2x2 cells; no features (empty) below 4x4 pixels."""
    H, W = m.shape
    cell = (max(2, H // 7), max(2, W // 7))
    if H < 2 * cell[0] or W < 2 * cell[1]:
        return np.zeros(0)
    from skimage.feature import hog   # lazy: skimage and scipy.ndimage cost a second

    return hog(m, orientations=9, pixels_per_cell=cell, cells_per_block=(2, 2), channel_axis=None)


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the two maps' HOG features (nan when either has none or is flat)."""
    fa, fb = hog_features(a), hog_features(b)
    if fa.size < 2 or np.ptp(fa) == 0 or np.ptp(fb) == 0:
        return float("nan")
    from scipy.stats import pearsonr    # lazy: scipy.stats costs a second on a first page

    return float(pearsonr(fa, fb).statistic)

# ---------------------------------------------------------------------------- two maps


@dataclass(frozen=True)
class Similarity:
    """How alike two maps are. values: "Spearman |map|", "SSIM signed", ... -> value in [-1, 1]
    (1 = alike), only for the measures that could be computed; reason: why none could (then
    values is empty)."""
    values: dict[str, float]
    reason: str | None = None

    def get(self, measure: str, kind: str = "|map|") -> float:
        """One value, nan when it could not be judged."""
        return self.values.get(f"{measure} {kind}", float("nan"))


def compare(a: np.ndarray, b: np.ndarray, *, signed: bool = True, mask: np.ndarray | None = None,
            names: tuple[str, str] | None = None,
            measures: tuple[str, ...] = MEASURES) -> Similarity:
    """Every measure of `measures` on |map| and, when `signed`, on the signed map, for two (H, W)
    maps. A `mask` (H, W) of bools restricts Spearman to its pixels (SSIM and HOG need the whole
    grid and are skipped). Never raises for degenerate maps: a map that `judgeable` rejects gives
    Similarity({}, "<name> <why>", the map named by `names`). Raises ValueError when the shapes differ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {a.shape} and {b.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        a, b, measures = a[mask], b[mask], tuple(m for m in measures if m == "Spearman")
        if a.size < 3:
            return Similarity({}, _("only {n} pixels are left to compare").format(n=a.size))
    for name, m in zip(names or (_("the first map"), _("the second map")), (a, b)):
        if (why := judgeable(m)) is not None:
            return Similarity({}, _("{name} {why}").format(name=name, why=why))
    values = {}
    for kind in KINDS if signed else KINDS[:1]:
        if kind == "|map|" and (judgeable(np.abs(a)) or judgeable(np.abs(b))):
            continue                                                  # e.g. +-1 everywhere: |map| is flat
        x, y = _scaled(a, kind == "|map|"), _scaled(b, kind == "|map|")
        for measure in measures:
            if measure == "Spearman":
                v = spearman(x, y)
            elif measure == "SSIM":
                v = ssim(x, y, data_range=1.0 if kind == "|map|" else 2.0)
            else:
                v = hog_similarity(x, y)
            if np.isfinite(v):
                values[f"{measure} {kind}"] = v
    if not values:
        return Similarity({}, _("no measure applies: the maps are constant in |value|"))
    return Similarity(values)
