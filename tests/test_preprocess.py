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


# --- every depth and float: values read by their actual range when they use little of the type's


def _levels_reference(a: np.ndarray) -> np.ndarray:
    """What a pixel should become, by hand: the type's range (0..255, 0..65,535, 0..1) when the
    values span at least a quarter of it, else their own min..max; rounded to 8 bits."""
    top = 1.0 if a.dtype.kind == "f" else float(np.iinfo(a.dtype).max)
    lo, hi = float(a.min()), float(a.max())
    if not (lo >= 0 and hi <= top and hi - lo >= top / 4):
        top = hi - lo
    else:
        lo = 0.0
    return np.rint(np.clip((a.astype(np.float64) - lo) / top, 0, 1) * 255).astype(np.uint8)


def _sample(dtype, lo, hi, shape=(40, 50)) -> np.ndarray:
    """A ramp lo..hi (both reached) with a bright square, so it is not a plain gradient."""
    r = np.linspace(lo, hi, shape[0] * shape[1]).reshape(shape)
    r[10:20, 10:30] = hi
    return r.astype(dtype)


DEPTHS = [  # (dtype, lo, hi, the file format that holds it)
    (np.uint16, 640, 3920, "PNG"),           # 12-bit data in a 16-bit file (the case)
    (np.uint16, 0, 1023, "PNG"),             # 10-bit
    (np.uint16, 0, 65535, "PNG"),            # full 16-bit: divided by 257
    (np.uint8, 0, 15, "PNG"),                # 4-bit data in an 8-bit file
    (np.uint8, 3, 250, "PNG"),               # an ordinary 8-bit picture: as it is
    (np.float32, 0.0, 0.02, "TIFF"),
    (np.float32, -3.0, 7.0, "TIFF"),
    (np.float32, 0.0, 1.0, "TIFF"),          # float in 0..1: times 255
    (np.int32, 100, 5000, "TIFF"),
]


@pytest.mark.parametrize("dtype,lo,hi,fmt", DEPTHS)
def test_every_depth_is_read_by_the_right_range(dtype, lo, hi, fmt):
    a = _sample(dtype, lo, hi)
    ref = _levels_reference(a)
    d = pp.decode(_encode(Image.fromarray(a), fmt), f"x.{fmt.lower()}")
    np.testing.assert_array_equal(d.rgb[..., 0], ref)
    np.testing.assert_array_equal(pp.from_array(a)[..., 0], ref)        # arrays by the same rule
    partial = not (0 <= lo and hi <= (1 if dtype == np.float32 else np.iinfo(dtype).max)
                   and hi - lo >= (1 if dtype == np.float32 else np.iinfo(dtype).max) / 4)
    assert any("read by its own range" in n for n in d.notes) == partial
    if partial:
        assert d.rgb.max() == 255 and d.rgb.min() == 0                  # the whole 8-bit range


def test_12_bit_data_in_a_16_bit_png_is_predicted_not_blank():
    a = np.full((120, 90), 3920, np.uint16)                # a light background (640..3920 of 65,535)
    a[20:100, 30:60] = 640                                 # a dark T-shirt
    a[20:40, 10:80] = 640
    d, p = pp.preprocess_file(_encode(Image.fromarray(a), "PNG"), "camera.png", "fashion")
    assert any("640..3,920 of 0..65,535" in n for n in d.notes)
    assert "(640 black, 3,920 white)" in p.steps[0].note        # said on the page
    assert not p.blank and p.x.max() > 0.9
    old = np.rint(a / 257).astype(np.uint8)                # the old reading: 2..15, a black square
    assert old.max() <= 15


def test_16_bit_colour_keeps_all_its_bits():
    import cv2

    rgb = np.stack([_sample(np.uint16, 640, 3920), _sample(np.uint16, 700, 3000),
                    _sample(np.uint16, 641, 3500)], axis=2)
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])           # OpenCV writes BGR
    d = pp.decode(buf.tobytes(), "rgb48.png")
    assert d.mode == "RGB;16"
    np.testing.assert_array_equal(d.rgb, _levels_reference(rgb))       # Pillow alone: 2..15
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 65535, np.uint16)])
    rgba[:5, :, 3] = 0
    ok, buf = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])
    d = pp.decode(buf.tobytes(), "rgba64.png")
    assert d.mode == "RGBA;16" and (d.rgb[:5] == 255).all()            # transparent: white
    np.testing.assert_array_equal(d.rgb[5:], _levels_reference(rgb)[5:])


def test_16_bit_grey_with_alpha_keeps_its_bits():
    h, w = 6, 5                                            # PNG colour type 4, depth 16, by hand
    grey = np.full((h, w), 3920, np.uint16)
    grey[2:5, 1:4] = 640
    alpha = np.full((h, w), 65535, np.uint16)
    alpha[0] = 0
    px = np.dstack([grey, alpha]).astype(">u2")
    raw = b"".join(b"\0" + px[r].tobytes() for r in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    d = pp.decode(data, "la16.png")
    want = np.where(grey == 640, 0, 255)
    want[0] = 255                                          # transparent: white
    np.testing.assert_array_equal(d.rgb[..., 0], want)


def test_one_value_everywhere_is_blank_with_a_message_at_any_depth():
    for a in (np.full((30, 40), 3920, np.uint16), np.full((30, 40), 0.37, np.float32)):
        d, p = pp.preprocess_file(_encode(Image.fromarray(a), "TIFF"), "flat.tif", "fashion")
        assert any("every pixel is" in n for n in d.notes)
        assert p.blank and any("nothing for the model to see" in n for n in p.notes)


def test_a_file_is_read_once_not_again_by_the_recipe():
    flat = _encode(Image.fromarray(np.full((30, 40), 3920, np.uint16)), "PNG")
    d, p = pp.preprocess_file(flat, "flat.png", "fashion")
    assert p.steps[0].note.count("every pixel is") == 1 and "8-bit" not in p.steps[0].note
    logo = np.zeros((40, 40, 4), np.uint8)
    logo[10:30, 10:30] = (230, 230, 230, 255)             # a faint grey square, the rest transparent
    d, p = pp.preprocess_file(_encode(Image.fromarray(logo, "RGBA"), "PNG"), "logo.png", "fashion")
    np.testing.assert_array_equal(p.steps[0].image, d.rgb)                 # 230 and 255, not stretched
    assert set(np.unique(d.rgb)) == {230, 255}


def test_photo_recipes_call_a_flat_picture_blank():
    flat = np.full((60, 80, 3), (120, 30, 200), np.uint8)
    for style, kw in (("photo", dict(size=32, channels=3)), ("imagenet", dict(size=64, resize=72, channels=3))):
        assert pp.preprocess(flat, style, **kw).blank
        assert not pp.preprocess(_shirt(), style, **kw).blank


def test_an_object_exactly_at_the_threshold_is_found():
    a = np.zeros((60, 60, 3), np.uint8)
    a[20:40, 25:35] = 16                                   # the brightest is exactly 16
    p = pp.preprocess(a, "fashion")
    assert not p.blank and "crop to the object" in [s.name for s in p.steps]


# --- alpha and size: shrunk before anything works in float at full size


def _old_reference(rgba: np.ndarray) -> np.ndarray:
    """The old decoder: alpha composited on white in float at full size, then INTER_AREA."""
    import cv2

    a = rgba.astype(np.float32)
    alpha = a[..., 3:] / 255
    rgb = np.clip(np.rint(a[..., :3] * alpha + 255 * (1 - alpha)), 0, 255).astype(np.uint8)
    s = pp.SHOW_SIDE / max(rgb.shape[:2])
    return cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)


def _cut_out(h: int, w: int) -> np.ndarray:
    import cv2
    import skimage.data

    rgb = cv2.resize(np.asarray(skimage.data.astronaut()), (w, h), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.ogrid[:h, :w]
    alpha = np.clip((0.4 * min(h, w) - np.hypot(yy - h / 2, xx - w / 2)) / 20, 0, 1)
    return np.dstack([rgb, (alpha * 255).astype(np.uint8)])


def test_a_large_rgba_image_matches_compositing_at_full_size_then_shrinking():
    rgba = _cut_out(2100, 3100)                            # read in strips, shrunk 3.03 times
    d = pp.decode(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), "cut-out.png")
    ref = _old_reference(rgba)
    assert d.rgb.shape == ref.shape
    diff = np.abs(d.rgb.astype(int) - ref)    # rounded three times (premultiplied, narrowed, shortened)
    assert diff.max() <= 2 and diff.mean() < 0.1
    assert tuple(d.rgb[0, 0]) == (255, 255, 255)           # the transparent corner is white
    opaque = _old_reference(np.dstack([rgba[..., :3], np.full(rgba.shape[:2], 255, np.uint8)]))
    e = np.abs(pp.decode(_encode(Image.fromarray(rgba[..., :3]), "PNG"), "x.png").rgb.astype(int) - opaque)
    assert e.max() <= 1 and e.mean() < 0.2


def test_no_full_size_float_copy_is_made():
    import tracemalloc

    rgba = _cut_out(3000, 4000)                            # 12 megapixels
    data = _encode(Image.fromarray(rgba, "RGBA"), "TIFF")  # uncompressed: quick to make
    del rgba
    tracemalloc.start()
    try:
        pp.decode(data, "big.tif")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3000 * 4000 * 4                          # less than ONE full-size float channel


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillows_exif_transpose(orientation):
    from PIL import ImageOps

    a = np.zeros((30, 50, 3), np.uint8)
    a[2:8, 3:20] = (255, 0, 0)                             # a mark that shows every turn and flip
    a[20:28, 40:47] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(a), "PNG", exif=exif)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(pp.decode(data, "turned.png").rgb, ref)


# --- what the uploader accepts comes from what the decoder reads


def test_readable_formats_are_what_pillow_can_decode_here():
    from PIL import EpsImagePlugin

    r = pp.readable_formats()
    assert r == pp.READABLE
    assert r["jfif"] == "JPEG" and r["avif"] == "AVIF" and r["png"] == "PNG" and r["tif"] == "TIFF"
    for never in ("mpg", "h5", "grib", "bufr", "pdf", "wmf", "emf"):   # identify-only, stubs, save-only
        assert never not in r, never
    assert ("eps" in r) == EpsImagePlugin.has_ghostscript()


@pytest.mark.filterwarnings("ignore:IM image format is deprecated")
def test_every_readable_format_pillow_can_also_write_round_trips():
    img = Image.fromarray(_shirt(64, 48))
    done = set()
    for ext, fmt in pp.READABLE.items():
        if fmt not in Image.SAVE or fmt in done:
            continue
        data = None
        for mode in ("RGB", "L", "1"):                    # the first mode the writer takes
            try:
                data = _encode(img.convert(mode), fmt)
                break
            except (OSError, ValueError, KeyError):
                continue
        if data is None:
            continue
        d = pp.decode(data, f"x.{ext}")
        assert d.rgb.dtype == np.uint8 and d.rgb.shape[2] == 3, ext
        done.add(fmt)
    assert {"PNG", "JPEG", "AVIF", "WEBP", "TIFF", "BMP", "GIF", "JPEG2000", "QOI"} <= done
    assert len(done) >= 15


def _modes():
    """(name, encoded file, (row, col) of a transparent or dark pixel and what it must become)."""
    cut = np.zeros((20, 30, 4), np.uint8)
    cut[..., :3] = (200, 0, 0)
    cut[5:15, 5:25, 3] = 255                               # an opaque red bar, the rest transparent
    rgba = Image.fromarray(cut, "RGBA")
    pal = rgba.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    big_endian = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).astype(">u2")
    return [
        ("LA", _encode(rgba.convert("LA"), "PNG"), {(0, 0): 255, (10, 15): 60}),
        ("P+alpha", _encode(pal, "PNG"), {(0, 0): 255, (10, 15): (200, 0, 0)}),
        ("1", _encode(Image.fromarray(cut[..., 3]).convert("1"), "PNG"), {(0, 0): 0, (10, 15): 255}),
        ("CMYK", _encode(rgba.convert("RGB").convert("CMYK"), "TIFF"), {(0, 0): (200, 0, 0)}),
        ("LAB", _encode(rgba.convert("RGB").convert("LAB"), "TIFF"), {(10, 15): (199, 8, 3)}),
        ("I;16B", _encode(Image.frombuffer("I;16B", (30, 20), big_endian.tobytes(), "raw", "I;16B", 0, 1),
                          "TIFF"), {(0, 0): 0, (19, 29): round(599 * 100 / 257)}),
    ]


@pytest.mark.parametrize("name,data,expect", _modes(), ids=[m[0] for m in _modes()])
def test_colour_modes_and_transparency_decode_to_the_right_pixels(name, data, expect):
    d = pp.decode(data, "x.png")
    for (r, c), v in expect.items():
        want = (v, v, v) if isinstance(v, int) else v
        assert np.abs(d.rgb[r, c].astype(int) - want).max() <= 1, (name, r, c, d.rgb[r, c], want)


def test_scene_recipe_keeps_every_item_in_its_place():
    """A composed 64x64 scene shown 4x larger on white, as a printout or a screen shot of it would
    be, comes back to the scene itself."""
    scene = np.zeros((64, 64), np.uint8)
    scene[10:30, 4:20] = 200                                               # one item, top left
    scene[40:60, 40:52] = 160                                              # another, bottom right
    big = np.repeat(np.repeat(255 - scene, 4, 0), 4, 1)                    # (256, 256), dark on white
    pipe = pp.preprocess(np.stack([big] * 3, -1), "scene", size=64)
    assert pipe.x.shape == (1, 64, 64) and not pipe.blank and pipe.style == "scene"
    assert np.abs(pipe.x[0] * 255 - scene).mean() < 3                     # the same picture
    assert pp.style_for("scenes") == pp.style_for("scenes-zh") == "scene"
    wide = pp.preprocess(np.stack([np.pad(255 - scene, ((0, 0), (32, 32)), constant_values=255)] * 3, -1),
                         "scene", size=64)                                 # padded, never stretched
    half = scene.reshape(32, 2, 32, 2).mean((1, 3))                       # the scene at half size, centred
    assert np.abs(wide.x[0, 16:48, 16:48] * 255 - half).mean() < 3
    wide.x[0, 16:48, 16:48] = 0
    assert wide.x.max() < 0.02                                             # and nothing around it
    assert [s.name for s in wide.steps][-2:] == ["pad to a square", "resize to 64 x 64"]


@pytest.mark.parametrize("img", [np.zeros((64, 64, 3), np.uint8), np.full((1, 1, 3), 200, np.uint8),
                                 np.full((300, 500), 90, np.uint8)])
def test_scene_recipe_calls_an_empty_picture_blank(img):
    pipe = pp.preprocess(img, "scene", size=64)
    assert pipe.blank and pipe.notes and pipe.x.shape == (1, 64, 64)
