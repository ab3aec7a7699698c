"""Turn an uploaded file, a photo or a drawing into a model's input the way its dataset was made,
returning every intermediate step (name + image) so a page can show the pipeline.

Decoding uses Pillow (it reads the header without decoding, so the size is checked before any
pixel is allocated; it knows GIF, palette, CMYK, 16-bit and EXIF orientation; every format it can
read here is accepted), and OpenCV for colour images with 16 bits a channel, of which Pillow
keeps only 8. Pixels are read by their actual range when they use little of their type's (as
ImageJ shows 16-bit and float images), and a large image is shrunk strip by strip before any
full-size float copy could exist. The pipeline uses OpenCV. Recipes: Fashion-MNIST (Xiao et al. 2017, section 2: trim the background, resize the
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
from PIL import Image, UnidentifiedImageError

from karp_models.i18n import _

MAX_PIXELS = 64_000_000      # larger uploads are refused before decoding (a 12 MP phone photo is fine)
MAX_BYTES = 50 * 2**20       # bigger files are refused before reading their pixels
WORK_SIDE = 512              # the pipeline runs on a copy whose longest side is at most this
SHOW_SIDE = 1024             # the "original" step is kept at most this large
BUSY_BORDER_STD = 40.0       # a border this varied is not a plain background
FLAT_RANGE = 8               # a photo-recipe input whose values differ by less is one flat colour


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
    blank: bool = False      # nothing left for the model to see (the notes say why): no prediction


# --------------------------------------------------------------------------- decoding

STRIP_PIXELS = 1_000_000     # a large image is read, levelled, composited and shrunk this many
                             # pixels at a time: no float copy of the whole image is ever made
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I", "F")


def levels(lo: float, hi: float, top: float, what: str) -> tuple[float, float, str]:
    """The values (black, white) an image's pixels are read between, and what was done.

    A type's range 0..`top` (255 for 8 bits, 65,535 for 16, 1.0 for floating point) when the
    pixels lo..hi span at least a quarter of it; otherwise their own range lo..hi, as ImageJ
    shows 16-bit and float images: 12-bit data in a 16-bit file (640..3,920 of 65,535), a float
    image in 0..0.02 or in -3..7, a 4-bit mask saved as 8 bits. `what` names the image in the
    note ("16-bit image"); the note is empty when nothing was changed.
    """
    if 0 <= lo and hi <= top and hi - lo >= top / 4:
        return 0.0, float(top), ""
    if hi <= lo:
        return 0.0, float(top), _("{what}: every pixel is {value:,.6g}").format(what=what, value=lo)
    return float(lo), float(hi), _("{what} using only {lo:,.6g}..{hi:,.6g} of 0..{top:,.6g}: read by its "
                                   "own range ({lo:,.6g} black, {hi:,.6g} white)").format(
                                       what=what, lo=lo, hi=hi, top=top)


def _type_top(dtype: np.dtype) -> float:
    """The value a type calls white: 1.0 for floats and booleans, else the integer maximum."""
    return 1.0 if dtype.kind in "fb" else float(np.iinfo(dtype).max)


def _kind(dtype: np.dtype, colour: bool) -> str:
    if dtype.kind == "f":
        return _("floating-point colour image") if colour else _("floating-point image")
    words = _("{bits}-bit colour image") if colour else _("{bits}-bit image")
    return words.format(bits=dtype.itemsize * 8)


def _extrema(img: Image.Image) -> tuple[float, float]:
    """(min, max) over all bands of a single-layer or colour image (Pillow's getextrema, or, for
    modes it has none for, such as I;16B, strip by strip with numpy)."""
    try:
        ext = img.getextrema()
    except ValueError:
        W, H = img.size
        rows = max(1, STRIP_PIXELS // max(W, 1))
        ext = [(float(a.min()), float(a.max())) for a in
               (np.asarray(img.crop((0, y, W, min(H, y + rows)))) for y in range(0, H, rows))]
    bands = list(ext) if isinstance(ext[0], tuple) else [ext]
    return float(min(b[0] for b in bands)), float(max(b[1] for b in bands))


@dataclass
class _Pixels:
    """An image to read strip by strip: a decoded Pillow image (read in `mode`) or an array
    (H, W[, C]) (channels picked in `order`), its black and white levels, and whether its last
    channel is alpha (opaque at `alpha_top`)."""

    src: Image.Image | np.ndarray
    height: int
    width: int
    lo: float
    hi: float
    alpha: bool
    alpha_top: float = 255.0
    mode: str = ""
    order: list[int] | None = None

    @classmethod
    def of_image(cls, img: Image.Image, notes: list[str]) -> _Pixels:
        """Any Pillow mode: 1, L, P, CMYK, YCbCr, LAB, HSV and RGB are 8-bit displays read as
        they are (P and CMYK converted by Pillow); L, LA, RGB, RGBA and the 16-bit, 32-bit and
        float modes by levels() of their extrema (colour bands only)."""
        m = img.mode
        alpha = m in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info or (
            m == "P" and img.palette is not None and img.palette.mode == "RGBA")
        if m == "P":
            notes.append(_("palette image with transparency") if alpha else _("palette image"))
        elif m == "CMYK":
            notes.append(_("CMYK colours converted to RGB"))
        if m in _HIGH_DEPTH:
            mode = m
        elif m in ("1", "L", "LA", "La"):
            mode = "LA" if alpha else "L"
        else:
            mode = "RGBA" if alpha else "RGB"
        lo, hi, a_lo = 0.0, 255.0, 0.0
        if m in ("LA", "RGBA"):
            a_lo = img.getextrema()[-1][0]
        if m in _HIGH_DEPTH or (m in ("L", "RGB") and not alpha):    # 8-bit with alpha: as it is
            lo, hi = _extrema(img)
            dtype = np.dtype({"F": np.float32, "I": np.int32}.get(m, np.uint16 if m.startswith("I;16")
                                                                   else np.uint8))
            lo, hi, note = levels(lo, hi, _type_top(dtype), _kind(dtype, m == "RGB"))
            if note:
                notes.append(note)
            elif m.startswith("I;16"):
                notes.append(_("16-bit image reduced to 8 bits"))
        if alpha and (a_lo < 255 or m not in ("LA", "RGBA")):
            notes.append(_("transparent parts placed on white"))
        return cls(img, img.size[1], img.size[0], lo, hi, alpha, 255.0, mode)

    @classmethod
    def of_array(cls, a: np.ndarray, notes: list[str], order: list[int] | None = None) -> _Pixels:
        """(H, W), (H, W, 2 or 4) (the last channel alpha) or (H, W, 3), any integer, bool or
        float dtype, read by levels() of its colour channels (8 bits with alpha: as they are);
        `order` picks channels (BGR)."""
        C = 1 if a.ndim == 2 else a.shape[2]
        alpha = C in (2, 4)
        colour = a[..., :C - 1] if alpha else a
        top = _type_top(a.dtype)
        lo, hi = (float(colour.min()), float(colour.max())) if a.size else (0.0, top)
        if alpha and a.dtype == np.uint8:
            lo, hi = 0.0, top
        lo, hi, note = levels(lo, hi, top, _kind(a.dtype, C >= 3))
        if note:
            notes.append(note)
        elif a.dtype.itemsize > 1 and a.dtype.kind in "ui":
            notes.append(_("{bits}-bit image reduced to 8 bits").format(bits=a.dtype.itemsize * 8))
        if alpha and a.size and a[..., -1].min() < top:
            notes.append(_("transparent parts placed on white"))
        return cls(a, a.shape[0], a.shape[1], lo, hi, alpha, top, "", order)

    @property
    def as_is(self) -> bool:
        """8-bit pixels read as they are (the usual case): integer maths, no float."""
        return (self.lo, self.hi) == (0, 255) and self.alpha_top == 255 and (
            not isinstance(self.src, np.ndarray) or self.src.dtype == np.uint8)

    def strip(self, y0: int, y1: int) -> np.ndarray:
        """Rows y0:y1 as (h, W, C) in a form whose area average is the area average of the
        final pixels (finish() turns it into them): 8-bit pixels as they are (uint8, C 1 or 3);
        8-bit with alpha premultiplied, alpha last (uint8, C 2 or 4: on white, a pixel is its
        premultiplied colour + 255 - alpha, so compositing waits until after shrinking);
        anything else float32 in [0, 1], levelled and composited on white (C 1 or 3)."""
        premultiply = self.as_is and self.alpha
        if isinstance(self.src, Image.Image):
            s = self.src.crop((0, y0, self.width, y1))
            if s.mode != self.mode:
                s = s.convert(self.mode)
            a = np.asarray(s.convert({"LA": "La", "RGBA": "RGBa"}[self.mode]) if premultiply else s)
            a = a.reshape(a.shape[0], a.shape[1], -1)
            if premultiply or self.as_is:
                return a
        else:
            a = self.src[y0:y1] if self.order is None else self.src[y0:y1][..., self.order]
            a = a.reshape(a.shape[0], a.shape[1], -1)
            if premultiply:
                alpha = a[..., -1:].astype(np.uint16)
                colour = ((a[..., :-1] * alpha + 127) // 255).astype(np.uint8)
                return np.concatenate([colour, a[..., -1:]], axis=2)
            if self.as_is:
                return a
        x = a[..., :-1] if self.alpha else a
        x = np.clip((x.astype(np.float32) - np.float32(self.lo)) * np.float32(1 / (self.hi - self.lo)), 0, 1)
        if self.alpha:
            alpha = a[..., -1:].astype(np.float32) * np.float32(1 / self.alpha_top)
            x = x * alpha + (1 - alpha)                               # on white
        return x

    def finish(self, x: np.ndarray) -> np.ndarray:
        """Shrunk strips (h, w, C) -> (h, w, 1 or 3) uint8 pixels."""
        if x.dtype != np.uint8:
            return np.rint(x * 255).astype(np.uint8)
        if self.alpha:                                                # premultiplied, on white
            return np.clip(x[..., :-1].astype(np.int16) + 255 - x[..., -1:], 0, 255).astype(np.uint8)
        return x


def _read(px: _Pixels, side: int | None) -> np.ndarray:
    """All of `px` as (H, W, 3) uint8, shrunk (INTER_AREA) as _fit would so its longest side is
    at most `side` (None: kept as it is).

    Read in strips of about STRIP_PIXELS (rows x width): each is levelled (and premultiplied by
    its alpha, see _Pixels.strip) and narrowed to the final width before the next is read; the
    narrow image (H, final width) is then shortened, and composited on white. Area averaging
    is separable and linear, so this is the one-step INTER_AREA of the full-size composite, yet
    no full-size copy exists but the decoder's own: a 64-megapixel RGBA file costs about what
    the same RGB file costs.
    """
    H, W = px.height, px.width
    s = side / max(H, W) if side and max(H, W) > side else 1.0
    w2, h2 = max(1, round(W * s)), max(1, round(H * s))
    rows = max(1, STRIP_PIXELS // max(W, 1))
    strips = []
    for y in range(0, H, rows):
        x = px.strip(y, min(H, y + rows))                             # (h, W, C)
        if w2 != W:
            x = cv2.resize(x, (w2, x.shape[0]), interpolation=cv2.INTER_AREA)
        strips.append(x.reshape(x.shape[0], w2, -1))
    x = np.concatenate(strips)                                        # (H, w2, C)
    if h2 != H:
        x = cv2.resize(x, (w2, h2), interpolation=cv2.INTER_AREA)
    g = px.finish(x.reshape(h2, w2, -1))
    return g if g.shape[2] == 3 else np.repeat(g, 3, axis=2)


# Pillow's exif_transpose, on an array: EXIF orientation -> numpy operations
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, 3),
           7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}


def _rawmode(img: Image.Image) -> str:
    tile = getattr(img, "tile", None) or []
    args = tile[0].args if tile else ""
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")


def _deep_colour(data: bytes, img: Image.Image) -> np.ndarray | None:
    """A colour image with 16 bits per channel decoded with OpenCV (Pillow keeps only the high
    8 bits of each, which leaves 12-bit data nearly black): (H, W, C) uint16 in Pillow's channel
    order's reverse (BGR, BGRA), or None when it is not such an image or OpenCV cannot read it."""
    if img.mode not in ("RGB", "RGBA", "LA") or ";16" not in _rawmode(img):
        return None
    try:
        a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    return a if a is not None and a.dtype == np.uint16 else None


# Pillow's "identify-only" formats (its docs, Image file formats): the header is read, no pixels
_IDENTIFY_ONLY = {"MPEG"}
# formats Pillow opens through another format's plugin (an MPO file is read by the JPEG one)
_OPENED_AS = {"MPO": "JPEG"}
# formats whose codec is an optional part of a Pillow build, and its name in PIL.features
_CODECS = {"JPEG": "jpg", "JPEG2000": "jpg_2000", "WEBP": "webp", "AVIF": "avif"}


def readable_formats() -> dict[str, str]:
    """{file ending without the dot: Pillow format} of every format decode() can read here:
    Pillow's registered extensions whose format it can open, less the identify-only ones, the
    stubs with no loader (BUFR, GRIB, HDF5, WMF off Windows), EPS without Ghostscript, and the
    formats whose optional codec this build lacks. Extensions as Pillow lists them: '.jfif'
    is JPEG, '.avif' AVIF, '.apng' PNG, ...
    """
    from PIL import EpsImagePlugin, ImageFile, features

    Image.init()
    out = {}
    for ext, fmt in sorted(Image.registered_extensions().items()):
        opener = _OPENED_AS.get(fmt, fmt)
        factory = Image.OPEN.get(opener, (None,))[0]
        stub = isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)
        if factory is None or opener in _IDENTIFY_ONLY or (stub and factory._handler is None) \
                or (opener == "EPS" and not EpsImagePlugin.has_ghostscript()) \
                or (opener in _CODECS and not features.check(_CODECS[opener])):
            continue
        out[ext.lstrip(".").lower()] = fmt
    return out


READABLE = readable_formats()   # what the uploader accepts: {'png': 'PNG', 'jfif': 'JPEG', ...}


def decode(data: bytes, name: str = "") -> Decoded:
    """Bytes of an image file (PNG, JPEG, WebP, BMP, GIF's first frame, TIFF, ...) -> Decoded.

    Raises ImageError with a message for a person: empty, not an image, truncated, too large
    (decompression bombs included: the size is read from the header before decoding).
    """
    what = f"'{name}'" if name else _("the file")
    if not data:
        raise ImageError(_("{file} is empty (0 bytes): choose another file.").format(file=what))
    if len(data) > MAX_BYTES:
        raise ImageError(_("{file} is {mb:.0f} MB; the limit is {limit} MB.").format(
            file=what, mb=len(data) / 2**20, limit=MAX_BYTES // 2**20))
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            fmt, mode = img.format or "?", img.mode
            if w * h > MAX_PIXELS:
                words = (_("{file} says it is {w:,} x {h:,} pixels ({mp:,.0f} megapixels); the limit is "
                           "{limit:.0f} megapixels. Make it smaller first (only {kb:,.0f} KB for that many "
                           "pixels: a 'decompression bomb' that could fill the memory).")
                         if len(data) < w * h / 100 else
                         _("{file} says it is {w:,} x {h:,} pixels ({mp:,.0f} megapixels); the limit is "
                           "{limit:.0f} megapixels. Make it smaller first."))
                raise ImageError(words.format(file=what, w=w, h=h, mp=w * h / 1e6, limit=MAX_PIXELS / 1e6,
                                              kb=len(data) / 1e3))
            if w < 1 or h < 1:
                raise ImageError(_("{file} has no pixels ({w} x {h}).").format(file=what, w=w, h=h))
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                notes.append(_("first of {n} frames").format(n=img.n_frames))
            if fmt == "JPEG" and mode in ("RGB", "L", "CMYK"):
                img.draft(mode, (SHOW_SIDE // 2, SHOW_SIDE // 2))   # decode at 1/2..1/8 scale: fast
            deep = _deep_colour(data, img)                           # before getexif() loads it
            orientation = img.getexif().get(0x0112, 1)
            if deep is not None:                                     # 16 bits a channel: OpenCV
                mode += ";16"
                C = deep.shape[2] if deep.ndim == 3 else 1
                order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(C)
                px = _Pixels.of_array(deep, notes, order)
            else:
                img.load()
                px = _Pixels.of_image(img, notes)
            rgb = _read(px, SHOW_SIDE)
            if orientation in _ORIENT:
                rgb = np.ascontiguousarray(_ORIENT[orientation](rgb))
                notes.append(_("turned upright (EXIF orientation {n})").format(n=orientation))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(_("{file} is not an image this app can read (is it a text or other file "
                           "renamed to an image name?). Use PNG, JPEG, WebP, BMP or GIF.").format(file=what)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        n = re.search(r"\((\d+) pixels\)", str(e))
        size = (_("{mp:,.0f} megapixels").format(mp=int(n.group(1)) / 1e6) if n
                else _("far too many pixels"))
        raise ImageError(_("{file} says it holds {size}; the limit is {limit:.0f} megapixels. Make it "
                           "smaller first (a small file that claims a huge image is a 'decompression "
                           "bomb' and could fill the memory).").format(
                               file=what, size=size, limit=MAX_PIXELS / 1e6)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e)
        if "truncated" in msg or isinstance(e, EOFError) or "broken" in msg:
            raise ImageError(_("{file} is cut short (truncated or damaged): {error}. Save or download "
                               "it again.").format(file=what, error=msg)) from None
        raise ImageError(_("{file} could not be decoded: {error}").format(file=what, error=msg)) from None
    except MemoryError:
        raise ImageError(_("{file} is too large to decode on this machine.").format(file=what)) from None
    return Decoded(rgb=rgb, size=(w, h), format=fmt, mode=mode, notes=tuple(notes))


def from_array(img: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
    """A photo or drawing array (H, W), (H, W, 3) or (H, W, 2 or 4) (the last channel alpha:
    placed on white), of any dtype, -> (H, W, 3) uint8, its values read as decode() reads a
    file's (levels(): the type's range, or their own when they use less than a quarter of it).
    What was done is appended to `notes`."""
    a = np.asarray(img)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.size \
            and int(a.max()) - int(a.min()) >= 64:                  # the usual case, as it is
        return np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] > 4:
        raise ValueError(f"an image has 1 to 4 channels, not {a.shape[2]}")
    return _read(_Pixels.of_array(a, [] if notes is None else notes), None)


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
