"""Checkpoints: safetensors files with the model config, data facts and metrics in the metadata.

Format 'karp-1': the model's tensors under their state_dict names; with a trainer, its
optimizer, RNG and task state under keys prefixed 'trainer/'; a training time-lapse's weights
under 'timelapse/<step>/' (train/timelapse.py). Metadata values are strings:
format, model (registry name), config (JSON of the model's dataclass config) and one JSON
string per meta entry. Loading is strict and never unpickles (safetensors' own design;
torchvision's weights carry their facts in `meta` the same way). Writes are atomic. A file's
header is read and checked before any tensor (train/headers.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save as st_save

from karp_models.i18n import _
from karp_models.train.headers import FORMAT, CheckpointError, parse_metadata, read_header
from karp_models.train.headers import read_metadata, read_trainer_summary  # noqa: F401 (callers import them here)

TRAINER_PREFIX = "trainer/"
NOT_MODEL = (TRAINER_PREFIX, "timelapse/")  # tensors beside the model's (train/timelapse.py)
_RESERVED = ("format", "model", "config", "_aliases", "_trainer")


class DiskFullError(OSError):
    """Saving failed for want of disk space (ENOSPC / EDQUOT); the previous file is intact."""

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class Checkpoint:
    model: nn.Module
    model_name: str
    config: dict
    meta: dict
    path: Path


# --- encoding of nested state (dicts, lists, tensors) as tensors + a JSON skeleton


def _cpu(t: torch.Tensor, copy: bool = False) -> torch.Tensor:
    """`t` on the CPU, contiguous. copy=True: a snapshot sharing no memory with `t`, in `t`'s
    own layout (a plain copy, fast even for channels-last weights; write_checkpoint makes it
    contiguous later, on the writer's thread)."""
    out = t.detach().to("cpu")
    if copy:
        return out.clone() if out.data_ptr() == t.data_ptr() else out
    return out.contiguous()


def _flatten(obj: Any, key: str, tensors: dict[str, torch.Tensor], copy: bool = False) -> Any:
    """Tensors go to `tensors` (named by their path, e.g. 'optimizer.state.0.exp_avg'), the rest
    to a JSON-able skeleton that names them; dicts with int keys and tuples are marked."""
    def sub(k: Any) -> str:
        return f"{key}.{k}" if key else str(k)

    if isinstance(obj, torch.Tensor):
        tensors[key] = _cpu(obj, copy)
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, sub(k), tensors, copy) for k, v in obj.items()}
        return {"__items__": [[k, _flatten(v, sub(k), tensors, copy)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, sub(i), tensors, copy) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, sub(i), tensors, copy) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {key!r} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def _model_tensors(model: nn.Module, copy: bool = False
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state_dict with tied tensors stored once: (tensors, alias name -> stored name)."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict().items():
        if "/" in name:
            raise ValueError(f"tensor name {name!r} clashes with the trainer prefix")
        sig = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
               tuple(t.stride()), t.dtype, t.device) if t.numel() else None
        if sig is not None and sig in seen:
            aliases[name] = seen[sig]
            continue
        if sig is not None:
            seen[sig] = name
        tensors[name] = _cpu(t, copy)
    return tensors, aliases


# --- saving


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, model_name: str,
                    meta: dict[str, Any], trainer: Any | None = None,
                    before_write: Callable[[int], None] | None = None) -> Path:
    """Write model (and optionally trainer) state to `path` atomically; returns the path.

    Args:
        model: a model with a dataclass `.config`.
        model_name: its registry name (how load_checkpoint rebuilds it).
        meta: JSON-able entries stored one JSON string each (dataset, classes or vocab,
            metrics, train, ...). With a trainer and no 'train' entry, one is filled in.
        trainer: also store its optimizer, RNG and task state, for load_trainer_state().
        before_write: called with the file's size in bytes once it is encoded, before anything
            is written; it may raise (a disk quota) to refuse the write, leaving no file.
    Raises DiskFullError (the previous file is intact), ValueError for reserved meta keys.
    """
    tensors, metadata = checkpoint_parts(model, model_name=model_name, meta=meta, trainer=trainer)
    return write_checkpoint(path, tensors, metadata, before_write=before_write)


def checkpoint_parts(model: nn.Module, *, model_name: str, meta: dict[str, Any],
                     trainer: Any | None = None, copy: bool = False
                     ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """What save_checkpoint writes, before encoding: (tensors, metadata strings). copy=True
    clones every tensor, so the parts keep this moment while training goes on (an autosave
    written by another thread: write_checkpoint(path, *parts))."""
    if trainer is not None and trainer.model is not model:
        raise ValueError("trainer.model is not the model being saved")
    bad = [k for k in meta if k in _RESERVED or k.startswith("_")]
    if bad:
        raise ValueError(f"meta keys {bad} are reserved")
    tensors, aliases = _model_tensors(model, copy)
    metadata = {"format": FORMAT, "model": model_name,
                "config": json.dumps(dataclasses.asdict(model.config))}
    meta = dict(meta)
    if trainer is not None:
        if "train" not in meta:
            meta["train"] = {"config": dataclasses.asdict(trainer.cfg), "steps": trainer.step,
                             "time_s": round(trainer.elapsed, 3)}
        state = trainer.state_dict()
        state.pop("model")
        extra: dict[str, torch.Tensor] = {}
        metadata["_trainer"] = json.dumps(_flatten(state, "", extra, copy))
        tensors.update({TRAINER_PREFIX + k: v for k, v in extra.items()})
    for k, v in meta.items():
        metadata[k] = json.dumps(v)
    if aliases:
        metadata["_aliases"] = json.dumps(aliases)
    return tensors, metadata


def write_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                     metadata: dict[str, str],
                     before_write: Callable[[int], None] | None = None) -> Path:
    """Encode checkpoint_parts() as safetensors and write them atomically to `path` (see
    save_checkpoint for before_write and the errors); returns the path."""
    path = Path(path)
    data = st_save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
    if before_write is not None:
        before_write(len(data))
    try:
        atomic_write(path, data)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = ("the previous file there is unchanged" if path.exists()
                    else "nothing was written")
            raise DiskFullError(e.errno, f"the disk is full: could not save {path.name} in "
                                f"{path.parent} ({kept}); free some space, then save again",
                                str(path)) from e
        raise
    return path


def _umask() -> int:
    """This process's umask, read without changing it (os.umask sets it, for every thread)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for row in f:
            if row.startswith("Umask:"):
                return int(row.split()[1], 8)
    return 0o022


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then os.replace: all or nothing. The file
    gets the mode a plain open() would (0o666 less the umask), not mkstemp's 0o600, so the other
    app servers and workers of a shared runs folder can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# --- reading


def _read_tensors(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in names}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise CheckpointError(_("{path}: cannot read its tensors ({error})").format(path=path, error=e)) from e


def _model_state(path: Path, header: dict, parsed: dict) -> dict[str, torch.Tensor]:
    names = [k for k in header if not k.startswith(NOT_MODEL)]
    state = _read_tensors(path, names)
    for alias, stored in parsed.get("_aliases", {}).items():
        if stored in state:
            state[alias] = state[stored]
    return state


def _mismatch(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """'' when `state` has exactly the names, shapes and dtypes of `expected`, else what differs."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    both = set(state) & set(expected)
    wrong = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                   for k in both if state[k].shape != expected[k].shape)
    types = sorted(f"{k} {state[k].dtype} vs {expected[k].dtype}"
                   for k in both if state[k].dtype != expected[k].dtype)
    parts = [f"missing {missing[:5]}" if missing else "",
             f"unexpected {unexpected[:5]}" if unexpected else "",
             f"shape mismatch (file vs model) {wrong[:5]}" if wrong else "",
             f"dtype mismatch (file vs model) {types[:5]}" if types else ""]
    return "; ".join(x for x in parts if x)


def _load_strict(path: Path, model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(_("{path}: its tensors do not fit model {model} built from its config: "
                                "{problem}").format(path=path, model=repr(name), problem=problem))
    model.load_state_dict(state, strict=True)


_TORCH_DTYPES = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
                 "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32,
                 "F32": torch.float32, "I64": torch.int64, "F64": torch.float64}


def _check_fits_before_building(path: Path, header: dict, parsed: dict, build: Any) -> None:
    """Build the model on the meta device (no memory) and compare its tensors with the header's,
    so a config forged to describe a giant model is refused before anything is allocated."""
    try:
        with torch.device("meta"):
            probe = build()
    except (NotImplementedError, RuntimeError):  # cannot be built on meta: the header's sizes
        return                                   # were still checked against the file
    state = {k: torch.empty(t["shape"], dtype=_TORCH_DTYPES.get(t["dtype"], torch.uint8),
                            device="meta")
             for k, t in header.items() if not k.startswith(NOT_MODEL)}
    for alias, stored in parsed.get("_aliases", {}).items():
        if stored in state:
            state[alias] = state[stored]
    problem = _mismatch(probe.state_dict(), state)
    if problem:
        raise CheckpointError(_("{path}: its tensors do not fit model {model} built from its config: "
                                "{problem}").format(path=path, model=repr(parsed["model"]), problem=problem))


def check_checkpoint(path: str | os.PathLike) -> None:
    """Raise CheckpointError unless the file's header is sound and its tensors fit the model its
    config describes; reads no tensor and allocates no model (it is built on the meta device)."""
    path = Path(path)
    header, metadata = read_header(path)
    parsed = parse_metadata(path, metadata)
    import karp_models.models as models

    try:
        _check_fits_before_building(path, header, parsed,
                                    lambda: models.from_config(parsed["model"], parsed["config"]))
    except (KeyError, LookupError, TypeError, ValueError) as e:
        raise CheckpointError(_("{path}: cannot rebuild model {model} from its config ({error})").format(
            path=path, model=repr(parsed["model"]), error=e)) from e


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild the model from the stored name and config, load its tensors strictly, eval mode."""
    path = Path(path)
    header, metadata = read_header(path)
    parsed = parse_metadata(path, metadata)
    name, config = parsed["model"], parsed["config"]
    import karp_models.models as models  # the registry (imported late: it imports the families)

    try:
        _check_fits_before_building(path, header, parsed, lambda: models.from_config(name, config))
        model = models.from_config(name, config)
    except (KeyError, LookupError) as e:
        known = ", ".join(sorted(getattr(models, "REGISTRY", {}) or [])) or "?"
        raise CheckpointError(_("{path}: unknown model {model} (known: {known})").format(
            path=path, model=repr(name), known=known)) from e
    except (TypeError, ValueError) as e:
        raise CheckpointError(_("{path}: cannot rebuild model {model} from its config ({error})").format(
            path=path, model=repr(name), error=e)) from e
    _load_strict(path, model, _model_state(path, header, parsed), name)
    model.to(device).eval()
    meta = {k: v for k, v in parsed.items() if k not in _RESERVED}
    return Checkpoint(model=model, model_name=name, config=config, meta=meta, path=path)


def load_trainer_state(path: str | os.PathLike, trainer: Any) -> None:
    """Restore model, optimizer, RNG, task state and history into `trainer` to resume the run."""
    path = Path(path)
    header, metadata = read_header(path)
    parsed = parse_metadata(path, metadata)
    if "_trainer" not in parsed:
        raise CheckpointError(_("{path} holds no trainer state, so it cannot be continued: train it with "
                                "--save-optimizer (or save the run from the app)").format(path=path))
    n = len(TRAINER_PREFIX)
    extra = {k[n:]: v for k, v in _read_tensors(
        path, [k for k in header if k.startswith(TRAINER_PREFIX)]).items()}
    try:
        state = _unflatten(parsed["_trainer"], extra)
    except KeyError as e:
        raise CheckpointError(_("{path}: trainer tensor {name} is missing").format(path=path, name=e)) from None
    model_state = _model_state(path, header, parsed)
    _load_strict(path, trainer.model, model_state, parsed["model"])
    state["model"] = model_state
    try:
        trainer.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(_("{path}: its trainer state does not fit this trainer ({error})").format(
            path=path, error=e)) from e
