"""An image file or array read into RGB, checked first: decoding and validation for the
pipeline (karp_models/preprocess/recipes.py), and for anything that reads a person's images.

Decoding uses Pillow (it reads the header without decoding, so the size is checked before any
pixel is allocated; it knows GIF, palette, CMYK, 16-bit and EXIF orientation; every format it can
read here is accepted), and OpenCV for colour images with 16 bits a channel, of which Pillow
keeps only 8. Pixels are read by their actual range when they use little of their type's (as
ImageJ shows 16-bit and float images), and a large image is shrunk strip by strip before any
full-size float copy could exist.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from karp_models.i18n import _

MAX_PIXELS = 64_000_000      # larger uploads are refused before decoding (a 12 MP phone photo is fine)
MAX_BYTES = 50 * 2**20       # bigger files are refused before reading their pixels
SHOW_SIDE = 1024             # the "original" step is kept at most this large


class ImageError(ValueError):
    """A file that is not a usable image; the message says why in words a person can act on."""


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray          # (H, W, 3) uint8, EXIF orientation applied, at most SHOW_SIDE
    size: tuple[int, int]    # the file's own (width, height)
    format: str              # 'JPEG', 'PNG', ...
    mode: str                # the file's colour mode: 'RGB', 'CMYK', 'P', 'I;16', ...
    notes: tuple[str, ...] = ()  # what was done to read it: "EXIF orientation 6: rotated", ...



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
