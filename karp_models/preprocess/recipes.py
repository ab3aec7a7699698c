"""The recipes that turn a decoded photo or drawing into a model's input the way its dataset was
made, returning every intermediate step (name + image) so a page can show the pipeline. Uses
OpenCV; files are read by karp_models/preprocess/decode.py. Recipes: Fashion-MNIST (Xiao et al.
2017, section 2: trim the background, resize the longest edge, pad the shorter one, negate to a
bright object on black, 8-bit grayscale); MNIST (LeCun et al.: size-normalised into a 20x20 box
keeping the aspect ratio, then centred by its centre of mass in 28x28); torchvision's ImageNet
eval transform (resize the shorter side, centre crop).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from karp_models.i18n import _
from karp_models.preprocess.decode import Decoded, decode, from_array

WORK_SIDE = 512              # the pipeline runs on a copy whose longest side is at most this
BUSY_BORDER_STD = 40.0       # a border this varied is not a plain background
FLAT_RANGE = 8               # a photo-recipe input whose values differ by less is one flat colour


@dataclass(frozen=True)
class Step:
    name: str
    image: np.ndarray        # (H, W) or (H, W, 3) uint8
    note: str = ""


@dataclass(frozen=True)
class Pipeline:
    steps: list[Step]
    x: np.ndarray            # (C, H, W) float32 in [0, 1]: the model's input
    style: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    blank: bool = False      # nothing left for the model to see (the notes say why): no prediction


# --------------------------------------------------------------------------- pipeline pieces


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    """Downscale (INTER_AREA) so the longest side is at most `side`; smaller images are kept."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _border(gray: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels (what a product photo's background looks like)."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _to_black_background(gray: np.ndarray) -> tuple[np.ndarray, str]:
    """Make the object bright on black: negate when the border is light, then stretch so the
    background level goes to 0 (Fashion-MNIST negates its product photos on white)."""
    negated = np.median(_border(gray)) > 127
    if negated:
        gray = 255 - gray
    if np.std(_border(gray)) > BUSY_BORDER_STD:                     # no plain background to remove
        return gray, (_("light background: negated, busy background: not removed") if negated
                      else _("busy background: not removed"))
    b = float(np.percentile(_border(gray), 75))
    out = np.clip((gray.astype(np.float32) - b) * (255.0 / max(255.0 - b, 1.0)), 0, 255).astype(np.uint8)
    note = (_("light background: negated, background level {level:.0f} set to black") if negated
            else _("background level {level:.0f} set to black"))
    return out, note.format(level=b)


def _object_box(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the pixels brighter than a threshold, ignoring specks; None if blank."""
    if img.max() < 16:
        return None
    t = max(16.0, 0.2 * float(img.max()))
    mask = (img >= t).astype(np.uint8)                              # holds the brightest pixel
    if mask.shape[0] > 32 and mask.shape[1] > 32:                    # drop 1-2 pixel noise
        opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = opened if opened.any() else mask
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _resize_longest(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def _pad_center(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    out = np.zeros((size, size) + img.shape[2:], np.uint8)
    y, x = (size - h) // 2, (size - w) // 2
    out[y:y + h, x:x + w] = img
    return out


def _center_of_mass(img: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Place `img` in a size x size black square so its centre of mass is at the centre."""
    m = cv2.moments(img.astype(np.float32))
    h, w = img.shape
    cy, cx = (m["m01"] / m["m00"], m["m10"] / m["m00"]) if m["m00"] > 0 else (h / 2, w / 2)
    M = np.float32([[1, 0, size / 2 - cx], [0, 1, size / 2 - cy]])
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR, borderValue=0), (cy, cx)


# --------------------------------------------------------------------------- recipes

STYLES = ("fashion", "mnist", "digits", "photo", "imagenet", "scene")


def style_for(dataset: str) -> str:
    """The recipe that matches how `dataset`'s images were made."""
    return {"fashion-mnist": "fashion", "mnist": "mnist", "digits": "digits",
            "cifar10": "photo", "imagenet": "imagenet", "scenes": "scene",
            "scenes-zh": "scene"}.get(dataset, "fashion")


def preprocess(rgb: np.ndarray | Decoded, style: str = "fashion", *, size: int = 28,
               channels: int = 1, resize: int | None = None) -> Pipeline:
    """Photo or drawing -> the model's input, with every step.

    Args:
        rgb: an array read by from_array() ((H, W[, C]), any dtype; what was done is noted on
            the first step), or a Decoded file, used as decode() read it (with its notes).
        style: 'fashion' (grayscale, object bright on black, crop to the object, keep the aspect
            ratio, pad, resize), 'mnist' (the same, then a 20x20 box centred by mass in 28x28),
            'digits' (as fashion, 8x8, no margin), 'photo' (centre square crop, resize: CIFAR),
            'imagenet' (resize the shorter side to `resize`, centre crop `size`), 'scene' (the
            composed captioning scenes: grayscale, items bright on black, the whole picture padded
            to a square and resized, so every item keeps its place and relative size).
        size: the model's input side; channels: 1 (grayscale) or 3.
    Returns:
        Pipeline(steps, x (channels, size, size) float32 in [0, 1], style).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    if isinstance(rgb, Decoded):
        read, rgb = list(rgb.notes), rgb.rgb
    else:
        read = []
        rgb = from_array(rgb, read)
    steps = [Step(_("original"), rgb, "; ".join(read + [f"{rgb.shape[1]} x {rgb.shape[0]}"]))]
    work = _fit(rgb, WORK_SIDE if style != "imagenet" else max(WORK_SIDE, 2 * (resize or size)))
    if work.shape != rgb.shape:
        steps.append(Step(_("smaller working copy"), work, f"{work.shape[1]} x {work.shape[0]}"))
    if style in ("photo", "imagenet"):
        h, w = work.shape[:2]
        if style == "imagenet":
            s = (resize or size) / min(h, w)
            work = cv2.resize(work, (max(size, round(w * s)), max(size, round(h * s))),
                              interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            steps.append(Step(_("shorter side to {side}").format(side=resize or size), work,
                              f"{work.shape[1]} x {work.shape[0]}"))
            h, w = work.shape[:2]
            y, x = (h - size) // 2, (w - size) // 2
            out = work[y:y + size, x:x + size]
            steps.append(Step(_("centre crop {size} x {size}").format(size=size), out))
        else:
            c = min(h, w)
            y, x = (h - c) // 2, (w - c) // 2
            sq = work[y:y + c, x:x + c]
            steps.append(Step(_("centre square"), sq))
            out = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)
            steps.append(Step(_("resize to {size} x {size}").format(size=size), out))
        flat = int(np.ptp(out.reshape(-1, out.shape[-1]), axis=0).max()) < FLAT_RANGE
        if channels == 1:
            out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
            steps.append(Step(_("grayscale"), out))
            x = out[None].astype(np.float32) / 255
        else:
            x = out.transpose(2, 0, 1).astype(np.float32) / 255    # (3, H, W)
        notes = (_("the picture the model would see is one flat colour (its values differ by less "
                   "than {n} of 255): there is nothing in it to recognise").format(n=FLAT_RANGE),)
        return Pipeline(steps, np.ascontiguousarray(x), style, notes if flat else (), flat)

    gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    steps.append(Step(_("grayscale"), gray))
    obj, note = _to_black_background(gray)
    steps.append(Step(_("object bright on black"), obj, note))
    box = _object_box(obj)
    if style == "scene":
        return _scene(steps, obj, box, size)
    notes: tuple[str, ...] = ()
    if box is None:
        notes = (_("the image is blank after removing the background: no pixel stands out from "
                   "it (the brightest is less than 16 of 255 above it), so there is nothing to "
                   "crop and nothing for the model to see"),)
        crop = obj
    else:
        y0, y1, x0, x1 = box
        crop = obj[y0:y1, x0:x1]
        if (y1 - y0) * (x1 - x0) > 0.9 * obj.size:
            notes = (_("the background is not plain, so almost the whole picture counts as the object: "
                       "the dataset's photos show one thing on a plain background; crop your photo "
                       "to the object, or photograph it on a plain sheet"),)
        steps.append(Step(_("crop to the object"), crop, f"{x1 - x0} x {y1 - y0}"))
    if style == "mnist":
        inner = round(size * 20 / 28)
        small = _resize_longest(crop, inner)
        steps.append(Step(_("fit in {inner} x {inner}, aspect kept").format(inner=inner), small))
        out, (cy, cx) = _center_of_mass(small, size)
        steps.append(Step(_("centre of mass to the middle of {size} x {size}").format(size=size), out,
                          _("mass centre was at ({x:.1f}, {y:.1f}) of the box").format(x=cx, y=cy)))
    else:
        small = _resize_longest(crop, size)
        steps.append(Step(_("longest side to {size}, aspect kept").format(size=size), small,
                          f"{small.shape[1]} x {small.shape[0]}"))
        out = _pad_center(small, size)
        steps.append(Step(_("pad to {size} x {size}").format(size=size), out))
    x = out[None].astype(np.float32) / 255                          # (1, H, W)
    if channels == 3:
        x = np.repeat(x, 3, axis=0)
    return Pipeline(steps, np.ascontiguousarray(x), style, notes, blank=box is None)


def _scene(steps: list[Step], obj: np.ndarray, box: tuple[int, int, int, int] | None, size: int) -> Pipeline:
    """The 'scene' recipe's end: pad the whole picture (items bright on black) to a square, keeping
    every item where it is, and resize it to size x size."""
    side = max(obj.shape)
    sq = _pad_center(obj, side)
    steps.append(Step("pad to a square", sq, "the items keep their places"))
    out = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    steps.append(Step(f"resize to {size} x {size}", out))
    notes: tuple[str, ...] = ()
    blank = box is None or out.max() < 16
    if box is None:
        notes = (("the image is blank after removing the background: no pixel stands out from "
                  "it (the brightest is less than 16 of 255 above it), so there is nothing for "
                  "the model to see"),)
    elif blank:
        notes = ("the items are too small to survive the resize to the scene's size: draw or "
                 "photograph them bigger",)
    elif (box[1] - box[0]) * (box[3] - box[2]) > 0.9 * obj.size:
        notes = ("the background is not plain, so almost the whole picture counts as items: the "
                 "scenes show a few things on black; photograph them on a plain sheet",)
    return Pipeline(steps, np.ascontiguousarray(out[None].astype(np.float32) / 255), "scene", notes,
                    blank=blank)


def preprocess_file(data: bytes, name: str = "", style: str = "fashion", **kw) -> tuple[Decoded, Pipeline]:
    """decode() then preprocess(): the page's path for an upload or a camera photo."""
    d = decode(data, name)
    return d, preprocess(d, style, **kw)
