"""preprocess: decoding every kind of file (and refusing bad ones with a message), and the recipes."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from karp_models import preprocess as pp


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _shirt(h: int = 120, w: int = 90) -> np.ndarray:
    """A dark T-shape on a white background, like a product photo."""
    a = np.full((h, w, 3), 245, np.uint8)
    a[20:100, 30:60] = (40, 60, 120)   # body
    a[20:40, 10:80] = (40, 60, 120)    # sleeves
    return a


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(w: int, h: int, bit_depth: int = 8, color: int = 0) -> bytes:
    """A PNG whose header claims w x h pixels with almost no data."""
    chunk = _chunk
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# --- bad input: a clear ImageError, never another exception


def test_empty_file():
    with pytest.raises(pp.ImageError, match="empty"):
        pp.decode(b"", "x.png")


def test_text_renamed_png():
    with pytest.raises(pp.ImageError, match="not an image"):
        pp.decode(b"hello, I am a text file\n" * 20, "notes.png")


def test_truncated_jpeg():
    data = _encode(Image.fromarray(_shirt(400, 300)), "JPEG", quality=90)
    with pytest.raises(pp.ImageError, match="truncated|cut short|damaged"):
        pp.decode(data[: len(data) // 2], "half.jpg")


def _bomb(w: int, h: int) -> bytes:
    """A real bomb: a valid PNG of w x h black pixels, all of its data compressed to ~w*h/1000 bytes."""
    z, row, parts = zlib.compressobj(9), b"\0" * (w + 1), []
    for _ in range(h):
        parts.append(z.compress(row))
    parts.append(z.flush())
    return _png_header_only(w, h)[:33] + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding():
    data = _bomb(9000, 9000)                   # 81 megapixels in ~80 KB
    assert len(data) < 200_000
    with pytest.raises(pp.ImageError, match="81 megapixels.*decompression bomb"):
        pp.decode(data, "bomb.png")


def test_bomb_beyond_pillow_limit_refused():
    with pytest.raises(pp.ImageError, match="400 megapixels"):
        pp.decode(_png_header_only(20_000, 20_000), "bomb.png")


def test_30000_square_refused():
    with pytest.raises(pp.ImageError, match="900 megapixels"):
        pp.decode(_png_header_only(30_000, 30_000), "huge.png")


# --- every colour mode decodes to RGB uint8


def test_16_bit_png():
    a = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    d = pp.decode(_encode(Image.fromarray(a), "PNG"), "deep.png")
    assert d.rgb.dtype == np.uint8 and d.rgb.shape == (64, 64, 3)
    assert d.rgb.max() >= 250 and d.rgb.min() == 0
    assert any("16-bit" in n for n in d.notes)


def test_cmyk_jpeg():
    img = Image.fromarray(_shirt()).convert("CMYK")
    d = pp.decode(_encode(img, "JPEG"), "print.jpg")
    assert d.mode == "CMYK" and d.rgb.shape == (120, 90, 3)
    assert d.rgb[5, 5].mean() > 200 and d.rgb[60, 45].mean() < 130   # white stays white


def test_palette_png():
    img = Image.fromarray(_shirt()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    d = pp.decode(_encode(img, "PNG"), "pal.png")
    assert d.mode == "P" and d.rgb.shape == (120, 90, 3)


def test_alpha_png_goes_on_white():
    a = np.zeros((50, 50, 4), np.uint8)
    a[10:40, 10:40] = (200, 0, 0, 255)         # an opaque red square, the rest fully transparent
    d = pp.decode(_encode(Image.fromarray(a, "RGBA"), "PNG"), "cut-out.png")
    assert tuple(d.rgb[0, 0]) == (255, 255, 255) and tuple(d.rgb[20, 20]) == (200, 0, 0)
    assert any("transparent" in n for n in d.notes)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_formats(fmt):
    d = pp.decode(_encode(Image.fromarray(_shirt()), fmt), f"x.{fmt.lower()}")
    assert d.rgb.shape == (120, 90, 3) and d.format == fmt


def test_gif_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    d = pp.decode(buf.getvalue(), "anim.gif")
    assert d.rgb[10, 10, 0] > 200 and d.rgb[10, 10, 2] < 50
    assert any("first of 2 frames" in n for n in d.notes)


def test_exif_orientation_is_honoured():
    img = Image.fromarray(_shirt(120, 90))     # portrait: 90 wide, 120 high
    exif = Image.Exif()
    exif[0x0112] = 6                           # "rotate 90 degrees clockwise to display"
    d = pp.decode(_encode(img, "JPEG", exif=exif), "phone.jpg")
    assert d.rgb.shape[:2] == (90, 120)
    assert any("EXIF" in n for n in d.notes)


def test_large_jpeg_is_reduced_for_display():
    img = Image.fromarray(np.full((3000, 4000, 3), 200, np.uint8))
    d = pp.decode(_encode(img, "JPEG", quality=80), "12mp.jpg")
    assert d.size == (4000, 3000) and max(d.rgb.shape[:2]) <= pp.SHOW_SIDE


# --- recipes


def test_fashion_recipe_makes_a_bright_object_on_black_filling_the_frame():
    p = pp.preprocess(_shirt(), "fashion")
    assert p.x.shape == (1, 28, 28) and p.x.dtype == np.float32
    assert 0 <= p.x.min() and p.x.max() <= 1
    img = p.steps[-1].image
    assert img[:, 0].max() < 30 and img[:, -1].max() < 30   # padding black
    assert img[14, 14] > 100                   # object bright
    rows = np.nonzero(img.max(1) > 30)[0]
    assert rows.min() <= 1 and rows.max() >= 26   # longest side (height) spans the frame
    names = [s.name for s in p.steps]
    assert names[0] == "original" and "grayscale" in names and "crop to the object" in names


def test_mnist_recipe_centres_by_mass_in_a_20_box():
    a = np.full((200, 200), 255, np.uint8)
    a[20:120, 130:150] = 0                     # a dark vertical stroke, off-centre ("1")
    p = pp.preprocess(np.repeat(a[:, :, None], 3, 2), "mnist")
    img = p.steps[-1].image
    ys, xs = np.nonzero(img > 30)
    assert ys.max() - ys.min() + 1 <= 21       # fits the 20x20 box
    w = img.astype(float)
    cy = (w.sum(1) * np.arange(28)).sum() / w.sum()
    cx = (w.sum(0) * np.arange(28)).sum() / w.sum()
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0


def test_drawing_white_on_black_is_not_inverted():
    a = np.zeros((280, 280, 4), np.uint8)      # canvas RGBA: transparent background
    a[..., 3] = 255
    a[60:220, 130:150, :3] = 255               # a white stroke
    p = pp.preprocess(a[:, :, :3], "mnist")
    assert p.steps[-1].image.max() > 200 and p.steps[-1].image[0, 0] == 0


def test_blank_image_gives_a_note_not_an_error():
    p = pp.preprocess(np.full((50, 50, 3), 255, np.uint8), "fashion")
    assert p.x.shape == (1, 28, 28) and p.notes


def test_photo_and_imagenet_recipes():
    rgb = np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    p = pp.preprocess(rgb, "photo", size=32, channels=3)
    assert p.x.shape == (3, 32, 32)
    q = pp.preprocess(rgb, "imagenet", size=224, channels=3, resize=256)
    assert q.x.shape == (3, 224, 224)
    assert any("centre crop" in s.name for s in q.steps)


def test_digits_style_and_style_for():
    assert pp.style_for("mnist") == "mnist" and pp.style_for("fashion-mnist") == "fashion"
    p = pp.preprocess(_shirt(), pp.style_for("digits"), size=8)
    assert p.x.shape == (1, 8, 8)


def test_preprocess_file_end_to_end():
    d, p = pp.preprocess_file(_encode(Image.fromarray(_shirt()), "PNG"), "shirt.png", "fashion")
    assert p.x.shape == (1, 28, 28) and d.format == "PNG"
