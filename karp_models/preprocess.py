"""Turn an uploaded file, a photo or a drawing into a model's input the way its dataset was made,
returning every intermediate step (name + image) so a page can show the pipeline.

Decoding uses Pillow (it reads the header without decoding, so the size is checked before any
pixel is allocated; it knows GIF, palette, CMYK, 16-bit and EXIF orientation); the pipeline uses
OpenCV. Recipes: Fashion-MNIST (Xiao et al. 2017, section 2: trim the background, resize the
longest edge, pad the shorter one, negate to a bright object on black, 8-bit grayscale); MNIST
(LeCun et al.: size-normalised into a 20x20 box keeping the aspect ratio, then centred by its
centre of mass in 28x28); torchvision's ImageNet eval transform (resize the shorter side, centre
crop).
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 64_000_000      # larger uploads are refused before decoding (a 12 MP phone photo is fine)
MAX_BYTES = 50 * 2**20       # bigger files are refused before reading their pixels
WORK_SIDE = 512              # the pipeline runs on a copy whose longest side is at most this
SHOW_SIDE = 1024             # the "original" step is kept at most this large
BUSY_BORDER_STD = 40.0       # a border this varied is not a plain background


class ImageError(ValueError):
    """A file that is not a usable image; the message says why in words a person can act on."""


@dataclass(frozen=True)
class Step:
    name: str
    image: np.ndarray        # (H, W) or (H, W, 3) uint8
    note: str = ""


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray          # (H, W, 3) uint8, EXIF orientation applied, at most SHOW_SIDE
    size: tuple[int, int]    # the file's own (width, height)
    format: str              # 'JPEG', 'PNG', ...
    mode: str                # the file's colour mode: 'RGB', 'CMYK', 'P', 'I;16', ...
    notes: tuple[str, ...] = ()  # what was done to read it: "EXIF orientation 6: rotated", ...


@dataclass(frozen=True)
class Pipeline:
    steps: list[Step]
    x: np.ndarray            # (C, H, W) float32 in [0, 1]: the model's input
    style: str
    notes: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- decoding


def _to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8; transparency composited on white."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img).astype(np.float64)
        if mode == "F" or a.max() > 65535 or a.min() < 0:
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / (hi - lo or 1.0) * 255
            notes.append(f"{mode} image: values {lo:g}..{hi:g} stretched to 0..255")
        else:
            a = a / 257.0                                            # 0..65535 -> 0..255
            notes.append("16-bit image reduced to 8 bits")
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "CMYK":
        notes.append("CMYK colours converted to RGB")
        return np.asarray(img.convert("RGB"))
    if mode == "P":
        has_alpha = "transparency" in img.info or img.palette.mode == "RGBA"
        notes.append("palette image" + (" with transparency" if has_alpha else ""))
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode in ("PA", "LA", "La", "RGBa", "RGBA") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA")).astype(np.float32)
        alpha = rgba[:, :, 3:] / 255
        if alpha.min() < 1:
            notes.append("transparent parts placed on white")
        return np.clip(np.rint(rgba[:, :, :3] * alpha + 255 * (1 - alpha)), 0, 255).astype(np.uint8)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def decode(data: bytes, name: str = "") -> Decoded:
    """Bytes of an image file (PNG, JPEG, WebP, BMP, GIF's first frame, TIFF, ...) -> Decoded.

    Raises ImageError with a message for a person: empty, not an image, truncated, too large
    (decompression bombs included: the size is read from the header before decoding).
    """
    what = f"'{name}'" if name else "the file"
    if not data:
        raise ImageError(f"{what} is empty (0 bytes): choose another file.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{what} is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            fmt, mode = img.format or "?", img.mode
            if w * h > MAX_PIXELS:
                raise ImageError(f"{what} says it is {w:,} x {h:,} pixels ({w * h / 1e6:,.0f} "
                                 f"megapixels); the limit is {MAX_PIXELS / 1e6:.0f} megapixels. "
                                 f"Make it smaller first" + (
                                     f" (only {len(data) / 1e3:,.0f} KB for that many pixels: a "
                                     f"'decompression bomb' that could fill the memory)."
                                     if len(data) < w * h / 100 else "."))
            if w < 1 or h < 1:
                raise ImageError(f"{what} has no pixels ({w} x {h}).")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                notes.append(f"first of {img.n_frames} frames")
            if fmt == "JPEG" and mode in ("RGB", "L", "CMYK"):
                img.draft(mode, (SHOW_SIDE // 2, SHOW_SIDE // 2))   # decode at 1/2..1/8 scale: fast
            img.load()
            orientation = img.getexif().get(0x0112, 1)
            if orientation not in (1, None):
                img = ImageOps.exif_transpose(img)
                notes.append(f"turned upright (EXIF orientation {orientation})")
            rgb = _to_rgb(img, notes)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{what} is not an image this app can read (is it a text or other "
                         f"file renamed to an image name?). Use PNG, JPEG, WebP, BMP or GIF.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        n = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(n.group(1)) / 1e6:,.0f} megapixels" if n else "far too many pixels"
        raise ImageError(f"{what} says it holds {size}; the limit is {MAX_PIXELS / 1e6:.0f} "
                         f"megapixels. Make it smaller first (a small file that claims a huge "
                         f"image is a 'decompression bomb' and could fill the memory).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e)
        if "truncated" in msg or isinstance(e, EOFError) or "broken" in msg:
            raise ImageError(f"{what} is cut short (truncated or damaged): {msg}. "
                             f"Save or download it again.") from None
        raise ImageError(f"{what} could not be decoded: {msg}") from None
    except MemoryError:
        raise ImageError(f"{what} is too large to decode on this machine.") from None
    rgb = _fit(np.ascontiguousarray(rgb), SHOW_SIDE)
    return Decoded(rgb=rgb, size=(w, h), format=fmt, mode=mode, notes=tuple(notes))


def from_array(img: np.ndarray) -> np.ndarray:
    """A photo or drawing array (H, W), (H, W, 3) or (H, W, 4) (RGBA: on white) -> (H, W, 3) uint8."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a * 255 if a.dtype.kind == "f" and a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        return _to_rgb(Image.fromarray(a, "RGBA"), [])
    return np.ascontiguousarray(a[:, :, :3])


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
    note = ""
    if np.median(_border(gray)) > 127:
        gray = 255 - gray
        note = "light background: negated, "
    if np.std(_border(gray)) > BUSY_BORDER_STD:                     # no plain background to remove
        return gray, note + "busy background: not removed"
    b = float(np.percentile(_border(gray), 75))
    out = np.clip((gray.astype(np.float32) - b) * (255.0 / max(255.0 - b, 1.0)), 0, 255).astype(np.uint8)
    return out, note + f"background level {b:.0f} set to black"


def _object_box(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the pixels brighter than a threshold, ignoring specks; None if blank."""
    if img.max() < 16:
        return None
    t = max(16.0, 0.2 * float(img.max()))
    mask = (img > t).astype(np.uint8)
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

STYLES = ("fashion", "mnist", "digits", "photo", "imagenet")


def style_for(dataset: str) -> str:
    """The recipe that matches how `dataset`'s images were made."""
    return {"fashion-mnist": "fashion", "mnist": "mnist", "digits": "digits",
            "cifar10": "photo", "imagenet": "imagenet"}.get(dataset, "fashion")


def preprocess(rgb: np.ndarray, style: str = "fashion", *, size: int = 28, channels: int = 1,
               resize: int | None = None) -> Pipeline:
    """Photo or drawing (H, W, 3) uint8 -> the model's input, with every step.

    Args:
        style: 'fashion' (grayscale, object bright on black, crop to the object, keep the aspect
            ratio, pad, resize), 'mnist' (the same, then a 20x20 box centred by mass in 28x28),
            'digits' (as fashion, 8x8, no margin), 'photo' (centre square crop, resize: CIFAR),
            'imagenet' (resize the shorter side to `resize`, centre crop `size`).
        size: the model's input side; channels: 1 (grayscale) or 3.
    Returns:
        Pipeline(steps, x (channels, size, size) float32 in [0, 1], style).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    rgb = from_array(rgb)
    steps = [Step("original", rgb, f"{rgb.shape[1]} x {rgb.shape[0]}")]
    work = _fit(rgb, WORK_SIDE if style != "imagenet" else max(WORK_SIDE, 2 * (resize or size)))
    if work.shape != rgb.shape:
        steps.append(Step("smaller working copy", work, f"{work.shape[1]} x {work.shape[0]}"))
    if style in ("photo", "imagenet"):
        h, w = work.shape[:2]
        if style == "imagenet":
            s = (resize or size) / min(h, w)
            work = cv2.resize(work, (max(size, round(w * s)), max(size, round(h * s))),
                              interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            steps.append(Step(f"shorter side to {resize or size}", work,
                              f"{work.shape[1]} x {work.shape[0]}"))
            h, w = work.shape[:2]
            y, x = (h - size) // 2, (w - size) // 2
            out = work[y:y + size, x:x + size]
            steps.append(Step(f"centre crop {size} x {size}", out))
        else:
            c = min(h, w)
            y, x = (h - c) // 2, (w - c) // 2
            sq = work[y:y + c, x:x + c]
            steps.append(Step("centre square", sq))
            out = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)
            steps.append(Step(f"resize to {size} x {size}", out))
        if channels == 1:
            out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
            steps.append(Step("grayscale", out))
            x = out[None].astype(np.float32) / 255
        else:
            x = out.transpose(2, 0, 1).astype(np.float32) / 255    # (3, H, W)
        return Pipeline(steps, np.ascontiguousarray(x), style)

    gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    steps.append(Step("grayscale", gray))
    obj, note = _to_black_background(gray)
    steps.append(Step("object bright on black", obj, note))
    box = _object_box(obj)
    notes: tuple[str, ...] = ()
    if box is None:
        notes = ("the image is blank after removing the background: nothing to crop",)
        crop = obj
    else:
        y0, y1, x0, x1 = box
        crop = obj[y0:y1, x0:x1]
        if (y1 - y0) * (x1 - x0) > 0.9 * obj.size:
            notes = ("the background is not plain, so almost the whole picture counts as the object: "
                     "the dataset's photos show one thing on a plain background; crop your photo "
                     "to the object, or photograph it on a plain sheet",)
        steps.append(Step("crop to the object", crop, f"{x1 - x0} x {y1 - y0}"))
    if style == "mnist":
        inner = round(size * 20 / 28)
        small = _resize_longest(crop, inner)
        steps.append(Step(f"fit in {inner} x {inner}, aspect kept", small))
        out, (cy, cx) = _center_of_mass(small, size)
        steps.append(Step(f"centre of mass to the middle of {size} x {size}", out,
                          f"mass centre was at ({cx:.1f}, {cy:.1f}) of the box"))
    else:
        small = _resize_longest(crop, size)
        steps.append(Step(f"longest side to {size}, aspect kept", small,
                          f"{small.shape[1]} x {small.shape[0]}"))
        out = _pad_center(small, size)
        steps.append(Step(f"pad to {size} x {size}", out))
    x = out[None].astype(np.float32) / 255                          # (1, H, W)
    if channels == 3:
        x = np.repeat(x, 3, axis=0)
    return Pipeline(steps, np.ascontiguousarray(x), style, notes)


def preprocess_file(data: bytes, name: str = "", style: str = "fashion", **kw) -> tuple[Decoded, Pipeline]:
    """decode() then preprocess(): the page's path for an upload or a camera photo."""
    d = decode(data, name)
    p = preprocess(d.rgb, style, **kw)
    if d.notes:
        p.steps[0] = Step("original", d.rgb, "; ".join(d.notes + (p.steps[0].note,)))
    return d, p
