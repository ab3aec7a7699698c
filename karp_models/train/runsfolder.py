"""The runs folder: where saved runs go ($KARP_RUNS, else ./runs; never inside weights/), their
safe names, listing and deleting them, and a person's own datasets kept beside the runs trained
on them (save_dataset / load_dataset). Shared by the CLI and the app; runs.py re-exports it all.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
import unicodedata
from pathlib import Path
from typing import Any

from karp_models.i18n import _
from karp_models.train.headers import CheckpointError, read_metadata

WEIGHTS_DIR = Path(__file__).resolve().parent.parent.parent / "weights"
STALE_TEMP_S = 3600.0
MAX_NAME_BYTES = 160  # a run's file stem; with '.safetensors' and a save's temporary suffix < 255


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Where saved runs go: `path`, else $KARP_RUNS, else ./runs (never inside weights/)."""
    root = Path(path or os.environ.get("KARP_RUNS") or "runs").expanduser().resolve()
    weights = WEIGHTS_DIR.resolve()
    if root == weights or weights in root.parents:
        raise ValueError(_("the runs folder {folder} must be outside {weights} (shipped weights)").format(
            folder=root, weights=weights))
    return root


def safe_run_name(name: str, max_len: int = 80) -> str:
    """A file stem made from a person's run name that cannot leave the runs folder.

    Unicode is normalised (NFKC, so full-width '．．／' becomes '../' first); anything but
    letters, digits, '_', '.' and '-' becomes '-'; runs of separators collapse; leading and trailing
    dots and dashes go. Raises ValueError when nothing is left.
    """
    s = unicodedata.normalize("NFKC", str(name)).strip()
    s = re.sub(r"\.safetensors$", "", s, flags=re.IGNORECASE)
    s = re.sub(r"[^\w.-]+", "-", s)
    s = re.sub(r"[-.]*-[-.]*", "-", s)  # separators around a dash: one dash
    s = re.sub(r"\.{2,}", ".", s).strip("._-")[:max_len].strip("._-")
    while len(s.encode()) > MAX_NAME_BYTES:  # file systems count bytes: CJK takes 3 a character
        s = s[:-1].rstrip("._-")
    if not s:
        raise ValueError(_("{name} is not usable as a run name: use letters, digits, - or _").format(
            name=repr(name)))
    return s


def run_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """runs_dir(root) / <safe name>.safetensors, checked to lie directly in that folder."""
    base = runs_dir(root)
    path = (base / f"{safe_run_name(name)}.safetensors").resolve()
    if path.parent != base:
        raise ValueError(_("{name} would leave the runs folder").format(name=repr(name)))
    return path


def list_runs(root: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """(path, metadata) of every saved run, newest first; unreadable files are skipped."""
    base = runs_dir(root)
    _sweep_temporaries(base)
    out = []
    for p in sorted(base.glob("*.safetensors"), key=lambda q: q.stat().st_mtime, reverse=True):
        try:
            if p.is_symlink() and p.resolve().parent != base:  # planted, pointing elsewhere
                continue
            out.append((p, read_metadata(p)))
        except (CheckpointError, OSError):  # unreadable, or deleted by someone meanwhile
            continue
    return out


def _sweep_temporaries(base: Path, older_than_s: float = STALE_TEMP_S) -> None:
    """Remove what a save killed midway left behind (its `.<name>.safetensors.*.tmp` file);
    the run it was replacing is intact, since the write is atomic. Only old ones: a younger
    one may be a save in progress."""
    now = time.time()
    for t in base.glob(".*.safetensors.*.tmp"):
        try:
            if now - t.stat().st_mtime > older_than_s:
                t.unlink()
        except OSError:
            pass


def delete_run(name: str, root: str | os.PathLike | None = None) -> Path:
    """Delete the saved run `<name>.safetensors` from the runs folder; its former path.

    Only a regular file directly in that folder: a name with a path in it, a symlink (say, to a
    shipped weights file) or anything else is refused with ValueError.
    """
    base = runs_dir(root)
    stem = str(name)
    path = base / f"{stem}.safetensors"
    if (Path(stem).name != stem or stem in ("", ".", "..") or path.is_symlink()
            or not path.is_file() or path.resolve().parent != base):
        raise ValueError(_("no saved run named {name} in {folder}").format(name=repr(stem), folder=base))
    path.unlink()
    return path


# --- a person's own datasets, saved beside the runs that trained on them

DATASETS_FOLDER = "datasets"
CLASSES_FOLDER = "own-classes"


def datasets_dir(root: str | os.PathLike | None = None) -> Path:
    """Where own datasets are kept, in a model's input format: <runs folder>/datasets."""
    return runs_dir(root) / DATASETS_FOLDER


def classes_dir(root: str | os.PathLike | None = None) -> Path:
    """Where a person's classes are saved as they were uploaded, one folder per set in
    ImageFolder's layout (data.own.write_folder): <runs folder>/own-classes."""
    return runs_dir(root) / CLASSES_FOLDER


def save_dataset(data: Any, root: str | os.PathLike | None = None) -> Any:
    """Keep an image dataset that is not in the data registry (a person's own classes) in
    datasets_dir(root), so a run trained on it can be evaluated, explained and continued later.

    The file is named after data.name (made safe); the same images saved again reuse their file,
    other images under a taken name (or a registry dataset's name) get the next free 'name-2',
    'name-3', ... Returns the dataset under the name it is kept as (load_dataset finds it).
    Raises DiskFullError/OSError when the file cannot be written.
    """
    from karp_models.data import DATASETS
    from karp_models.data import own

    folder = datasets_dir(root)
    stem, digest = safe_run_name(data.name), own.fingerprint(data)
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}-{n}"
        if name in DATASETS:
            continue
        path = folder / f"{name}.safetensors"
        if not path.exists():
            kept = dataclasses.replace(data, name=name)
            own.save(kept, path)
            return kept
        try:
            if own.fingerprint_of(path) == digest:
                return dataclasses.replace(data, name=name)
        except own.OwnDataError:                                  # damaged: leave it, take another name
            continue
    raise OSError(f"no free name for the dataset {stem!r} in {folder}")


def load_dataset(name: str, root: str | os.PathLike | None = None) -> Any:
    """A dataset by name: the data registry's (data.load), else one kept by save_dataset in
    datasets_dir(root) (then in the app's runs folder). Raises DatasetMissing (UnknownDataset)
    naming both places when it is in neither, data.own.OwnDataError for a damaged file."""
    from karp_models import data as datasets
    from karp_models.data import own

    if name in datasets.DATASETS:
        return datasets.load(name)
    places = [datasets_dir(root)] + ([datasets_dir()] if root is not None else [])
    for folder in places:
        path = folder / f"{name}.safetensors"
        if Path(name).name == name and path.is_file():
            return own.load(path)
    raise datasets.UnknownDataset(
        f"unknown dataset {name!r}: not one of karp's ({', '.join(datasets.DATASETS)}) and not "
        f"a set of your own classes in {places[0]}")
