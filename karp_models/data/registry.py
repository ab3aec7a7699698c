"""The dataset registry: name -> status, loader and downloader, and the status table the CLI prints.

A registry of keyword-only callables rather than if/elif chains (house convention 4, after
torchvision's dataset and weights registries).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable

from karp_models.data import caption_folder, chinese, images, scenes, text
from karp_models.rl import envs
from karp_models.data.base import CaptionData, DatasetMissing, DatasetStatus, ImageData, TextData
from karp_models.i18n import _

Root = str | os.PathLike | None

# --- registry


class UnknownDataset(DatasetMissing, ValueError):
    """A name that is not in the registry."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # 'image' | 'text' | 'scenes' (captioned images) | 'env' (an agent's environment)
    status: Callable[[Root], DatasetStatus]
    load: Callable[[Root], ImageData | TextData | CaptionData]
    download: Callable[[], None] | None  # None: ships inside an installed package
    takes_root: bool  # load(root=...) reads a folder the user names


def _env_status(env: envs.EnvData, root: Root = None) -> DatasetStatus:
    """An environment is made, not loaded: available when Gymnasium (and ale-py) are installed."""
    ok, how = envs.available(env)
    return DatasetStatus(env.name, "env", ok, _(env.source), how_to_get=how, note=_(env.note))


def _env_load(env: envs.EnvData, root: Root = None) -> envs.EnvData:
    ok, how = envs.available(env)
    if not ok:
        raise DatasetMissing(_("{name} needs Gymnasium and ale-py; install them with:\n  {command}").format(
            name=env.name, command=how))
    return env


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("fashion-mnist", "image", images.fashion_status, images.load_fashion,
                images.download_fashion, True),
    DatasetSpec("mnist", "image", images.mnist_status, images.load_mnist, images.download_mnist, True),
    DatasetSpec("digits", "image", images.digits_status, images.load_digits, None, False),
    DatasetSpec("cifar10", "image", images.cifar_status, images.load_cifar, images.download_cifar, True),
    DatasetSpec("shakespeare", "text", text.shakespeare_status, text.load_shakespeare, None, False),
    DatasetSpec("names", "text", text.names_status, text.load_names, None, False),
    DatasetSpec("tang300", "text", chinese.tang300_status, chinese.load_tang300, None, True),
    DatasetSpec("classical-zh", "text", chinese.classical_status, chinese.load_classical, None, True),
    DatasetSpec("scenes", "scenes", partial(scenes.status, "en"), partial(scenes.load, "en"),
                images.download_fashion, True),
    DatasetSpec("scenes-zh", "scenes", partial(scenes.status, "zh"), partial(scenes.load, "zh"),
                images.download_fashion, True),
    DatasetSpec("captions-folder", "scenes", caption_folder.status, caption_folder.load, None, True),
    DatasetSpec("cartpole", "env", partial(_env_status, envs.CARTPOLE), partial(_env_load, envs.CARTPOLE),
                None, False),
    DatasetSpec("pong", "env", partial(_env_status, envs.PONG), partial(_env_load, envs.PONG), None, False),
)}


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None


def _check_root(spec: DatasetSpec, root: Root) -> None:
    if root is not None and not spec.takes_root:
        raise ValueError(f"{spec.name} comes from an installed package; root= applies to "
                         f"{', '.join(s.name for s in DATASETS.values() if s.takes_root)}")


# --- API


def list_datasets() -> list[str]:
    """Names of every dataset karp knows, available or not."""
    return list(DATASETS)


def status(name: str, *, root: Root = None) -> DatasetStatus:
    """Where `name` comes from, or the command that gets it. Fast; never touches the network."""
    spec = _spec(name)
    _check_root(spec, root)
    return spec.status(root)


def statuses() -> list[DatasetStatus]:
    """status() of every dataset, in list_datasets() order."""
    return [status(n) for n in DATASETS]


def load(name: str, *, root: Root = None) -> ImageData | TextData | CaptionData:
    """Load a dataset into memory with its fixed splits (cached on disk and in this process).

    Args:
        name: one of list_datasets().
        root: a folder holding the files (fashion-mnist, mnist: the four IDX files, .gz or not,
            directly or under <Name>/raw/; cifar10: the folder holding cifar-10-batches-py/;
            tang300, classical-zh: the fortune files tang300, song100, chinese of fortunes-zh;
            scenes, scenes-zh: Fashion-MNIST's IDX files, the scenes are composed from them;
            captions-folder: an image folder and a captions file, see data/caption_folder.py).

    Returns:
        ImageData, TextData or CaptionData, frozen; its tensors are shared with other callers: do not modify them.

    Raises:
        DatasetMissing: the data is not on this machine; the message has the command that gets it.
    """
    spec = _spec(name)
    _check_root(spec, root)
    return spec.load(root)


def download(name: str) -> DatasetStatus:
    """Fetch `name` with torchvision's download code into the cache, unless an offline copy is there.

    Fails within seconds when offline (15 s socket timeout), raising DatasetMissing that says so.
    Datasets that ship in installed packages (digits, shakespeare, names; tang300 and classical-zh
    in Debian's fortunes-zh) need no download.
    """
    spec = _spec(name)
    st = spec.status(None)
    if st.available and not st.how_to_get:
        return st
    if spec.download is None:
        raise DatasetMissing(_("{name} ships in a package, not a download; install it with:\n  {command}").format(
            name=name, command=st.how_to_get))
    spec.download()
    return spec.status(None)


# --- status table


def _splits(st: DatasetStatus) -> str:
    unit = " chars" if st.kind == "text" else ""
    parts = [f"{k} {v:,}" for k, v in st.sizes.items()]
    s = " / ".join(parts) + (unit if parts else "")
    if st.vocab_size:
        s += f", vocab {st.vocab_size}"
    return s or "-"


def format_status_table(statuses: Iterable[DatasetStatus]) -> str:
    """Text for `python -m karp_models datasets`: a header, then one line per dataset.

    Columns: name, available/missing, split sizes (and vocabulary for text), source; then the
    command that gets the data (or the full data, for a subset) where there is one.
    """
    rows = []
    for st in statuses:
        get = " or ".join(ln.strip() for ln in st.how_to_get.splitlines() if ln.strip())
        where = st.source if st.available else f"missing: {st.note}" if st.note else "missing"
        if get:
            where += f"  ->  {'for all of it' if st.available else 'get it'}: {get}"
        rows.append((st.name, "available" if st.available else "missing", _splits(st), where))
    head = ("dataset", "status", "splits", "source")
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}" for r in [head, *rows])
