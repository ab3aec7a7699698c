"""The Flickr8k / COCO folder loader, on tiny folders the tests write: each layout of captions
file, images matched by name, the fixed hash split, word ids that decode back to the captions,
rare words as <unk>, Chinese by character, and the registry's 'captions-folder' entry."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from karp_models import data
from karp_models.data import caption_folder as cf
from karp_models.data.base import CaptionData

NAMES = [f"{i:04d}_photo.jpg" for i in range(24)]
CAPTIONS = {n: [f"A dog runs on the grass number {i % 3}.", f"The dog, {i % 3}, plays!"]
            for i, n in enumerate(NAMES)}


def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        a = np.zeros((30, 40, 3), np.uint8)
        a[:, :, i % 3] = 10 * i                                            # a colour per image, 40x30: cropped
        a[:, :5] = 255                                                     # the left strip is cut by the crop
        Image.fromarray(a).save(folder / n, quality=95)


@pytest.fixture
def flickr_csv(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "flickr8k"
    write_images(root / "Images", NAMES)
    with (root / "captions.txt").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        for n in NAMES:
            for c in CAPTIONS[n]:
                w.writerow([n, c])
    return root


def test_flickr8k_csv_layout(flickr_csv):
    d = cf.load(flickr_csv, size=16, min_count=1)
    assert isinstance(d, CaptionData) and d.language == "en" and d.vocab[:4] == CaptionData.SPECIALS
    test = [n for n in NAMES if cf.is_test(n)]
    assert 0 < len(test) < len(NAMES) and len(d.test_x) == len(test) and len(d.train_x) == len(NAMES) - len(test)
    assert d.train_x.shape[1:] == (3, 16, 16) and d.train_x.dtype.is_floating_point is False
    train = [n for n in NAMES if not cf.is_test(n)]
    for i, n in enumerate(train):
        assert d.references("train", i) == [cf.tokenize(c, "en") for c in CAPTIONS[n]]
        colour = NAMES.index(n) % 3
        assert abs(int(d.train_x[i, colour, 8, 8]) - 10 * NAMES.index(n)) <= 2     # its own image, centre crop
    assert d.references("train", 0)[0] == ["a", "dog", "runs", "on", "the", "grass", "number", "0"]
    assert d.max_len == 9 and set(d.train_nrefs.tolist()) == {2}


def test_rare_words_become_unknown(flickr_csv):
    d = cf.load(flickr_csv, size=8, min_count=20)
    assert "dog" in d.vocab and "0" not in d.vocab                         # in training: 'dog' 44 times, '0' 14
    words = d.references("train", 0)[0]
    assert words[-1] == "<unk>" and words[:2] == ["a", "dog"]


def test_flickr8k_token_and_coco_json_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "cache"))
    tok = tmp_path / "f8k"
    write_images(tok / "Flicker8k_Dataset", NAMES[:12])
    (tok / "Flickr8k_text").mkdir()
    (tok / "Flickr8k_text" / "Flickr8k.token.txt").write_text(
        "".join(f"{n}#{k}\t{c}\n" for n in NAMES[:12] for k, c in enumerate(CAPTIONS[n])))
    a = cf.load(tok, size=8, min_count=1)
    coco = tmp_path / "coco"
    write_images(coco / "val2017", NAMES[:12])
    (coco / "annotations").mkdir()
    doc = {"images": [{"id": 100 + i, "file_name": n} for i, n in enumerate(NAMES[:12])],
           "annotations": [{"image_id": 100 + i, "caption": c, "id": k}
                           for i, n in enumerate(NAMES[:12]) for k, c in enumerate(CAPTIONS[n])]}
    (coco / "annotations" / "captions_val2017.json").write_text(json.dumps(doc))
    b = cf.load(coco, size=8, min_count=1)
    assert a.vocab == b.vocab and (a.train_refs == b.train_refs).all() and (a.train_x == b.train_x).all()


def test_chinese_captions_by_character(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "zh"
    write_images(root / "Images", NAMES[:12])
    (root / "captions.txt").write_text("image,caption\n" + "".join(f"{n},一只狗在草地上跑。\n" for n in NAMES[:12]),
                                       encoding="utf-8")
    d = cf.load(root, size=8, min_count=1)
    assert d.language == "zh" and d.references("train", 0) == [list("一只狗在草地上跑")]
    assert d.text(d.references("train", 0)[0]) == "一只狗在草地上跑"


def test_registry_entry_reads_the_folder_from_root_or_the_environment(flickr_csv, monkeypatch, tmp_path):
    monkeypatch.delenv(cf.ENV, raising=False)
    st = data.status("captions-folder")
    assert not st.available and cf.ENV in st.how_to_get
    with pytest.raises(data.DatasetMissing, match=cf.ENV):
        data.load("captions-folder")
    assert data.status("captions-folder", root=flickr_csv).available
    monkeypatch.setenv(cf.ENV, str(flickr_csv))
    d = data.load("captions-folder")
    assert d.name == "captions-folder" and len(d.train_x) + len(d.test_x) == len(NAMES)
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "captions.txt").write_text("image,caption\nmissing.jpg,a cat\n")
    with pytest.raises(data.DatasetMissing, match="none of them"):
        data.load("captions-folder", root=empty)
