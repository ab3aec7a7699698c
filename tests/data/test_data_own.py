"""data.own: a person's classes from file bytes, arrays and an ImageFolder-layout folder, read as
Predict reads them (the same messages for bad files), in a backbone's input format, split by a seed."""
import io

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from karp_models import preprocess as pp
from karp_models.data import own


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _shape(kind: str, i: int) -> np.ndarray:
    """A dark shape on a light background (a product photo), moved a little with i: (96, 80, 3)."""
    a = np.full((96, 80, 3), 240, np.uint8)
    o = i % 5
    if kind == "bar":
        a[10 + o:86, 35:45] = (30, 40, 90)
    elif kind == "square":
        a[20 + o:70 + o, 15:65] = (90, 30, 30)
    else:  # ring
        yy, xx = np.mgrid[:96, :80]
        r = np.hypot(yy - 48 - o, xx - 40)
        a[(r > 18) & (r < 28)] = (20, 80, 20)
    return a


def _classes(n: int = 5) -> dict[str, list]:
    return {k: [(f"{k}{i}.png", _png(_shape(k, i))) for i in range(n)] for k in ("bar", "square", "ring")}


def test_bytes_become_the_input_predict_makes():
    built = own.build(_classes(), name="shapes")
    d = built.data
    assert d.classes == ("bar", "square", "ring") and d.name == "shapes" and not built.rejected
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape[1:] == (1, 28, 28)
    assert len(d.train_y) + len(d.test_y) == 15
    assert built.counts == {"bar": (4, 1), "square": (4, 1), "ring": (4, 1)}
    # each image is what Predict's pipeline makes of the same file (Fashion-MNIST's recipe)
    data = _png(_shape("square", 3))
    _, p = pp.preprocess_file(data, "s.png", "fashion", size=28, channels=1)
    want = np.rint(p.x * 255).astype(np.uint8)
    np.testing.assert_array_equal(own.to_input(data, own.InputFormat(), "s.png"), want)
    x = np.concatenate([d.train_x.numpy(), d.test_x.numpy()])
    assert any(np.array_equal(xi, want) for xi in x)


def test_arrays_and_the_mnist_recipe():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    fmt = own.InputFormat.for_dataset("mnist", 1, 28)
    assert fmt.style == "mnist"
    built = own.build({"one": [digit, digit.copy()], "other": [np.rot90(digit).copy(), digit.T.copy()]}, fmt)
    assert built.data.train_x.shape[1:] == (1, 28, 28) and not built.rejected
    _, p = pp.preprocess_file(_png(digit), "", "mnist")
    np.testing.assert_array_equal(own.to_input(digit, fmt), np.rint(p.x * 255).astype(np.uint8))


def test_bad_files_are_skipped_with_predicts_message():
    good = _classes(3)
    text = b"hello, I am a text file\n" * 20
    jpeg = _jpeg(_shape("bar", 0))
    blank = _png(np.full((50, 50, 3), 255, np.uint8))
    good["bar"] += [("notes.png", text), ("half.jpg", jpeg[: len(jpeg) // 2]), ("empty.png", b""),
                    ("white.png", blank)]
    built = own.build(good)
    assert [r.name for r in built.rejected] == ["notes.png", "half.jpg", "empty.png", "white.png"]
    assert all(r.class_name == "bar" for r in built.rejected)
    for r, data in zip(built.rejected[:3], (text, jpeg[: len(jpeg) // 2], b"")):
        with pytest.raises(pp.ImageError) as e:
            pp.decode(data, r.name)
        assert r.reason == str(e.value)                                   # Predict's words, exactly
    assert "blank" in built.rejected[3].reason and "white.png" in built.rejected[3].reason
    assert built.counts["bar"] == (2, 1) and "4 files refused" in built.data.note


@pytest.mark.parametrize("names,match", [
    (["only"], "1 class: name between 2 and 10"),
    ([f"c{i}" for i in range(11)], "11 classes"),
    (["cat", " Cat "], "two classes are called"),
    (["cat", "  "], "every class needs a name"),
])
def test_class_counts_and_names_are_checked(names, match):
    with pytest.raises(own.OwnDataError, match=match):
        own.build({n: [_png(_shape("bar", i)) for i in range(3)] for n in names} if len(set(names)) == len(names)
                  else dict.fromkeys(names, []))


def test_ten_classes_are_fine_and_names_are_tidied():
    assert own.check_classes([f" c  {i} " for i in range(10)])[3] == "c 3"


def test_a_class_needs_two_usable_images():
    images = _classes(3)
    images["ring"] = [("a.png", _png(_shape("ring", 0))), ("b.txt", b"not an image at all" * 9)]
    with pytest.raises(own.OwnDataError, match=r"class 'ring' has 1 usable image \(1 refused\)"):
        own.build(images)


def test_the_split_is_seeded_and_stratified():
    y = np.repeat(np.arange(3), [10, 5, 2])
    tr, va = own.split(y, 0.2, seed=0)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(17))
    assert np.bincount(y[va]).tolist() == [2, 1, 1]                     # round(0.2 n), at least one
    again, va2 = own.split(y, 0.2, seed=0)
    assert np.array_equal(va, va2) and np.array_equal(tr, again)
    assert any(not np.array_equal(va, own.split(y, 0.2, seed=s)[1]) for s in range(1, 5))
    a = own.build(_classes(10), seed=3).data
    b = own.build(_classes(10), seed=3).data
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.train_y, b.train_y)
    with pytest.raises(own.OwnDataError, match="between 0 and 1"):
        own.build(_classes(), val_fraction=0.0)


def test_a_folder_in_imagefolder_layout(tmp_path):
    from torchvision.datasets import ImageFolder

    for k, imgs in _classes(4).items():
        (tmp_path / k / "more").mkdir(parents=True)
        for i, (name, data) in enumerate(imgs):
            (tmp_path / k / ("more" if i == 0 else "") / name).write_bytes(data)
    (tmp_path / "bar" / ".DS_Store").write_bytes(b"\0\1")              # hidden: skipped
    (tmp_path / "ring" / "readme.txt").write_text("three rings")          # read, and refused
    built = own.from_folder(tmp_path)
    ref = ImageFolder(str(tmp_path))                                       # torchvision's view of it
    assert built.data.classes == tuple(ref.classes) == ("bar", "ring", "square")
    assert len(built.data.train_y) + len(built.data.test_y) == len(ref.samples) == 12
    assert [(r.class_name, r.name) for r in built.rejected] == [("ring", "readme.txt")]
    assert "not an image" in built.rejected[0].reason
    assert built.data.source == f"folder {tmp_path}" and built.data.name == tmp_path.name
    with pytest.raises(own.OwnDataError, match="not a folder"):
        own.from_folder(tmp_path / "nowhere")
    with pytest.raises(own.OwnDataError, match="no class folders"):
        own.from_folder(tmp_path / "bar" / "more")


def test_torchvision_transforms_make_the_input():
    """A torchvision backbone's input is its weights' transforms(); stored as uint8, the model
    normalises: (x / 255 - mean) / std is what transforms() itself gives."""
    w = tvm.ResNet18_Weights.IMAGENET1K_V1
    fmt = own.InputFormat(3, 224, "imagenet", w.transforms(mean=(0.0,) * 3, std=(1.0,) * 3))
    photo = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    x = own.to_input(_png(photo), fmt, "p.png")
    assert x.shape == (3, 224, 224) and x.dtype == np.uint8
    want = w.transforms()(torch.from_numpy(photo).permute(2, 0, 1))      # (3, 224, 224), normalised
    mean, std = torch.tensor(w.transforms().mean)[:, None, None], torch.tensor(w.transforms().std)[:, None, None]
    torch.testing.assert_close((torch.from_numpy(x).float() / 255 - mean) / std, want, atol=1e-5, rtol=0)


def test_save_and_load(tmp_path):
    d = own.build(_classes(), name="shapes", flip_ok=True).data
    back = own.load(own.save(d, tmp_path / "shapes.safetensors"))
    assert (back.name, back.classes, back.source, back.note) == (d.name, d.classes, d.source, d.note) and back.flip_ok
    for k in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(back, k), getattr(d, k)), k
    assert back.mean == pytest.approx(d.mean)
    (tmp_path / "other.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(own.OwnDataError, match="cannot be read"):
        own.load(tmp_path / "other.safetensors")


def test_the_fingerprint_is_the_images_not_the_name(tmp_path):
    import dataclasses

    d = own.build(_classes(), name="shapes").data
    f = own.fingerprint(d)
    assert own.fingerprint(dataclasses.replace(d, name="other", note="n", source="s")) == f
    assert own.fingerprint(dataclasses.replace(d, classes=("a", "b", "c"))) != f
    x = d.test_x.clone()
    x[0, 0, 5, 5] ^= 1
    assert own.fingerprint(dataclasses.replace(d, test_x=x)) != f
    assert own.fingerprint_of(own.save(d, tmp_path / "s.safetensors")) == f
    assert not list(tmp_path.glob(".*.tmp"))                               # written atomically
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(own.OwnDataError):
        own.fingerprint_of(tmp_path / "junk.safetensors")


def test_classes_written_as_a_folder_read_back_the_same(tmp_path):
    """write_folder's layout is ImageFolder's: read_folder (and torchvision) reads the same files."""
    from torchvision.datasets import ImageFolder

    images = {"bar": [("../../evil.png", _png(_shape("bar", 0))), ("b.png", _png(_shape("bar", 1)))],
              "猫 / cat": [("c.png", _png(_shape("ring", 0))), ("c.png", _png(_shape("ring", 1)))],
              ".hidden": [("s.png", _png(_shape("square", 0))), ("t.png", _png(_shape("square", 1)))]}
    root = own.write_folder(images, tmp_path / "set")
    assert sorted(p.name for p in root.iterdir()) == sorted(["bar", "猫-cat", "hidden"])
    assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))  # nothing escaped
    back = own.read_folder(root)
    assert list(back) == ImageFolder(str(root)).classes == ["bar", "hidden", "猫-cat"]
    for folder, name in (("bar", "bar"), ("猫-cat", "猫 / cat"), ("hidden", ".hidden")):
        assert [b for _, b in back[folder]] == [b for _, b in images[name]]       # both files, in order
    with pytest.raises(own.OwnDataError, match="exists already"):
        own.write_folder(images, root)
    with pytest.raises(own.OwnDataError, match="same folder name"):
        own.write_folder({"a b": images["bar"], "a-b": images["bar"]}, tmp_path / "two")
