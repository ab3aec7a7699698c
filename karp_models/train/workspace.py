"""A person's work on disk under an anonymous work identity (no accounts): the work folder
`<runs>/.work/<owner>/` holding each job's autosave and the last uploaded image, the disk quotas
(per identity and for the whole runs folder) and the sweep that removes old autosaves.

The identity is a random id kept in the person's browser (ui/identity.py); only a hash of it,
the owner tag, reaches the job queue and the disk, so nothing written here lets one person act
as another. Saved runs stay in the shared runs folder, where everyone can open them, and carry
their owner's tag in their metadata: that is how the quota counts them. (Jupyter keeps its
checkpoints in a hidden folder beside the notebook in the same way.)
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from karp_models.i18n import _
from karp_models.train.checkpoints import CheckpointError, atomic_write, read_metadata
from karp_models.train.runs import list_runs, runs_dir

WORK = ".work"                      # in the runs folder; list_runs never looks inside it
AUTOSAVE, UPLOADS = "autosave", "uploads"
STALE_TEMP_S = 3600.0
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MB = 1024 * 1024

# --- identities


def new_work_id() -> str:
    """A fresh anonymous work id: 24 URL-safe characters (144 random bits), unguessable."""
    return secrets.token_urlsafe(18)


def valid_work_id(value: object) -> bool:
    """True for a string that can be a work id (16-64 of A-Z a-z 0-9 _ -)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def owner_tag(work_id: str) -> str:
    """The owner name the queue and the disk use for a work id: 'w' + 24 hex digits of its
    SHA-256. One-way: knowing a tag (it is in saved runs' metadata) gives no access."""
    return "w" + hashlib.sha256(f"karp-work:{work_id}".encode()).hexdigest()[:24]


def owner_dir(owner: str, root: str | os.PathLike | None = None) -> Path:
    """`<runs>/.work/<owner>`; an owner name that is not a plain token is hashed first."""
    name = owner if _SAFE.fullmatch(owner) else "h" + hashlib.sha256(owner.encode()).hexdigest()[:24]
    return runs_dir(root) / WORK / name


def autosave_path(owner: str, job_id: str, root: str | os.PathLike | None = None) -> Path:
    """Where job `job_id` of `owner` keeps its autosave (one file, replaced atomically)."""
    if not _SAFE.fullmatch(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return owner_dir(owner, root) / AUTOSAVE / f"{job_id}.safetensors"


# --- quotas


def fmt_bytes(n: float) -> str:
    """'640 KB', '3.2 MB', '1,000 MB', '19.5 GB' (binary units, as the quotas are set)."""
    if n < MB:
        return f"{n / 1024:,.0f} KB"
    if n < 10 * MB:
        return f"{n / MB:.1f} MB"
    if n < 10000 * MB:
        return f"{n / MB:,.0f} MB"
    return f"{n / (1024 * MB):,.1f} GB"


@dataclass(frozen=True)
class Quota:
    """Disk limits in bytes (0: none). per_owner: one identity's saved runs, autosaves and
    uploads; total: everything in the runs folder; reserve: free disk space every write leaves."""

    per_owner: int = 1000 * MB
    total: int = 20000 * MB
    reserve: int = 200 * MB

    @classmethod
    def from_env(cls) -> Quota:
        """KARP_QUOTA_MB (per identity, default 1000), KARP_DISK_MB (the runs folder in all,
        default 20000) and KARP_DISK_RESERVE_MB (free space to keep, default 200); 0: no limit."""
        def mb(var: str, default: int) -> int:
            return int(float(os.environ.get(var, default)) * MB)

        return cls(per_owner=mb("KARP_QUOTA_MB", 1000), total=mb("KARP_DISK_MB", 20000),
                   reserve=mb("KARP_DISK_RESERVE_MB", 200))


class QuotaExceeded(ValueError):
    """A write refused before anything was written: it would pass a disk quota. The message says
    what uses the space and what to do."""


@dataclass(frozen=True)
class Usage:
    """Bytes on disk: one identity's saved runs, autosaves and uploads, and the whole runs folder."""

    saved: int
    autosaves: int
    uploads: int
    total: int

    @property
    def mine(self) -> int:
        return self.saved + self.autosaves + self.uploads


def _size(p: Path) -> int:
    try:
        return p.stat().st_size if p.is_file() and not p.is_symlink() else 0
    except OSError:
        return 0


def _folder_bytes(folder: Path) -> int:
    return sum(_size(p) for p in folder.rglob("*")) if folder.is_dir() else 0


def usage(owner: str, root: str | os.PathLike | None = None) -> Usage:
    """What `owner` and everyone use in the runs folder (reads the saved runs' headers only)."""
    base = runs_dir(root)
    mine = owner_dir(owner, root)
    saved = sum(_size(p) for p, meta in list_runs(base) if meta.get("owner") == owner)
    return Usage(saved=saved, autosaves=_folder_bytes(mine / AUTOSAVE),
                 uploads=_folder_bytes(mine / UPLOADS), total=_folder_bytes(base))


def check_room(owner: str, new_bytes: int, *,
               replacing: str | os.PathLike | list[str | os.PathLike] | None = None,
               root: str | os.PathLike | None = None, quota: Quota | None = None) -> None:
    """Raise QuotaExceeded unless `new_bytes` more, less the file(s) the write replaces or lets
    go (an overwritten run; a finished run's autosave once it is saved), fit the owner's quota,
    the runs folder's and the disk's reserve."""
    quota = quota or Quota.from_env()
    base = runs_dir(root)
    gone = replacing if isinstance(replacing, list) else [] if replacing is None else [replacing]
    extra = new_bytes - sum(_size(Path(p)) for p in set(map(Path, gone)))
    if extra <= 0:
        return
    if quota.per_owner or quota.total:
        u = usage(owner, base)
        if quota.per_owner and u.mine + extra > quota.per_owner:
            raise QuotaExceeded(_(
                "Your saved runs, autosaves and uploads use {used} of your {quota} on this "
                "server, and this file needs {size}. Delete a saved run or remove finished runs "
                "you no longer need, then try again.").format(
                    used=fmt_bytes(u.mine), quota=fmt_bytes(quota.per_owner),
                    size=fmt_bytes(new_bytes)))
        if quota.total and u.total + extra > quota.total:
            raise QuotaExceeded(_(
                "The runs folder of this server holds {used} of the {quota} it may use for "
                "everyone, and this file needs {size}. Ask the teacher to delete old saved "
                "runs.").format(used=fmt_bytes(u.total), quota=fmt_bytes(quota.total),
                                      size=fmt_bytes(new_bytes)))
    if quota.reserve:
        base.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(base).free
        if free - extra < quota.reserve:
            raise QuotaExceeded(_(
                "The disk has {free} free and this file needs {size}, which would leave less "
                "than the {reserve} the server keeps free. Free some space, then try "
                "again.").format(free=fmt_bytes(free), size=fmt_bytes(new_bytes),
                                     reserve=fmt_bytes(quota.reserve)))


# --- the last upload


def _upload_name(name: str) -> str:
    stem = re.sub(r"[^\w.-]+", "-", Path(str(name)).name).strip(".-")[:80]
    return stem or "upload"


def keep_upload(owner: str, name: str, data: bytes, root: str | os.PathLike | None = None,
                quota: Quota | None = None) -> Path:
    """Keep `data` (an uploaded file called `name`) as the owner's last upload, replacing the
    one before, so a refreshed tab shows it again. Raises QuotaExceeded (nothing written)."""
    folder = owner_dir(owner, root) / UPLOADS
    before = sorted(p for p in folder.glob("last-*") if p.is_file()) if folder.is_dir() else []
    check_room(owner, len(data), replacing=before[0] if before else None, root=root, quota=quota)
    path = folder / f"last-{_upload_name(name)}"
    atomic_write(path, data)
    for p in before:
        if p != path:
            with contextlib.suppress(OSError):
                p.unlink()
    return path


def kept_upload(owner: str, root: str | os.PathLike | None = None) -> tuple[str, bytes] | None:
    """(file name, bytes) of the owner's last upload, or None."""
    folder = owner_dir(owner, root) / UPLOADS
    for p in sorted(folder.glob("last-*")) if folder.is_dir() else []:
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                return p.name.removeprefix("last-"), p.read_bytes()
    return None


def forget_upload(owner: str, root: str | os.PathLike | None = None) -> None:
    """Delete the owner's kept upload (the page's 'Forget it')."""
    folder = owner_dir(owner, root) / UPLOADS
    for p in folder.glob("last-*") if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            p.unlink()


# --- autosaves: listing and sweeping


def autosaves(root: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """(path, metadata) of every job autosave in the runs folder, oldest first; a file that
    cannot be read (never the case for an atomic write, short of a damaged disk) is skipped."""
    base = runs_dir(root) / WORK
    out = []
    for p in sorted(base.glob(f"*/{AUTOSAVE}/*.safetensors"), key=_mtime):
        try:
            meta = read_metadata(p)
        except (CheckpointError, OSError):
            continue
        if isinstance(meta.get("autosave"), dict):
            out.append((p, meta))
    return out


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def sweep(root: str | os.PathLike | None = None, *, keep_done_s: float, keep_other_s: float,
          skip: set[Path] = frozenset(), now: float | None = None) -> list[Path]:
    """Remove old work: the autosave of a finished run keep_done_s seconds after it was last
    written, of a stopped or interrupted run keep_other_s after, an upload keep_other_s after,
    and temporaries a killed write left behind (after an hour). `skip`: autosaves of runs in
    use. The removed autosaves' paths."""
    now = time.time() if now is None else now
    base = runs_dir(root) / WORK
    removed = []
    if not base.is_dir():
        return removed
    for t in base.glob("*/*/.*.tmp"):
        if now - _mtime(t) > STALE_TEMP_S:
            with contextlib.suppress(OSError):
                t.unlink()
    for p, meta in autosaves(root):
        if p in skip:
            continue
        keep = keep_done_s if meta["autosave"].get("state") == "done" else keep_other_s
        if now - _mtime(p) > keep:
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    for u in base.glob(f"*/{UPLOADS}/*"):
        if u.is_file() and now - _mtime(u) > keep_other_s:
            with contextlib.suppress(OSError):
                u.unlink()
    for d in list(base.glob("*/*")) + list(base.glob("*")):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty
    return removed
