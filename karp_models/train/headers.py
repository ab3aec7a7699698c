"""A checkpoint file's header, read and checked before any tensor is: safetensors' layout (every
tensor's dtype, shape and byte range against the file, so a forged or damaged header is refused
before anything is allocated), karp's format tag and its metadata (JSON strings). Never
unpickles. The format and the loading are in train/checkpoints.py.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from karp_models.i18n import _

FORMAT = "karp-1"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class CheckpointError(Exception):
    """A checkpoint file is missing, not a karp checkpoint, or does not fit its model."""


def _what_is(head: bytes, size: int) -> str:
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"):
        return _("it is a pickle / torch.save file: karp never unpickles weights, since unpickling can run "
                 "arbitrary code; convert it to safetensors with code you trust")
    if size < 8:
        return _("only {n} bytes").format(n=size)
    return _("no valid header; a pickle or a damaged file? karp never unpickles weights")


def read_header(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """The safetensors JSON header (tensor name -> dtype, shape, data_offsets) and its metadata
    (strings), checked, without reading any tensor. Raises CheckpointError for a missing file,
    a pickle, a forged or damaged header, or a file without karp's format tag, model and config."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(_("no checkpoint file at {path}").format(path=p))
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        raw = f.read(n) if 0 < n <= _MAX_HEADER and 8 + n <= size else b""
    # a safetensors file: 8-byte little-endian length, then that many bytes of JSON object
    try:
        header = json.loads(raw) if raw[:1] == b"{" else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # nesting bomb: Recursion
        header = None
    if header is None:
        raise CheckpointError(_("{path} is not a safetensors file ({what})").format(path=p, what=_what_is(head, size)))
    if not isinstance(header, dict):
        raise CheckpointError(_("{path} is not a safetensors file (its header is not a JSON object)").format(path=p))
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(_("{path}: its safetensors metadata is not a map of strings (forged?)").format(path=p))
    _check_layout(p, header, size - 8 - n)
    fmt = metadata.get("format")
    if fmt != FORMAT:
        what = (_("{path} has no karp format tag") if fmt is None else _("{path} has format {format}")).format(
            path=p, format=repr(fmt))
        raise CheckpointError(_("{what}; this karp reads {format} checkpoints (saved by "
                                "karp_models.train.checkpoints.save_checkpoint)").format(what=what, format=repr(FORMAT)))
    if "model" not in metadata or "config" not in metadata:
        raise CheckpointError(_("{path} lacks the model name or config in its metadata").format(path=p))
    return header, metadata


_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _check_layout(p: Path, header: dict, body: int) -> None:
    """Every tensor's dtype, shape and byte range agree with each other and with the file, the
    ranges do not overlap and cover the data exactly (safetensors' own rules, checked before any
    model is built so a forged header cannot make karp allocate what the file does not hold)."""
    spans = []
    for name, t in header.items():
        try:
            dtype, shape, (a, b) = t["dtype"], t["shape"], t["data_offsets"]
            ok = (dtype in _DTYPE_BYTES and isinstance(shape, list)
                  and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= body)
        except (TypeError, ValueError, KeyError):
            ok = False
        if not ok:
            raise CheckpointError(_("{path}: tensor {name} has a forged or damaged entry (dtype, shape or "
                                    "offsets out of range)").format(path=p, name=repr(str(name)[:60])))
        numel = 1
        for d in shape:
            numel *= d
        if numel * _DTYPE_BYTES[dtype] != b - a:
            raise CheckpointError(_("{path}: tensor {name} claims {n:,} x {dtype} but holds {bytes:,} bytes "
                                    "(forged or damaged header)").format(path=p, name=repr(name), n=numel,
                                                                         dtype=dtype, bytes=b - a))
        spans.append((a, b, name))
    end = 0
    for a, b, name in sorted(spans):
        if a != end:
            what = (_("{path}: tensor {name} overlaps another (forged or damaged header)") if a < end else
                    _("{path}: tensor {name} leaves a gap before it (forged or damaged header)"))
            raise CheckpointError(what.format(path=p, name=repr(name)))
        end = b
    if end != body:
        raise CheckpointError(_("{path}: its tensors cover {end:,} of {body:,} data bytes (truncated, padded "
                                "or forged)").format(path=p, end=end, body=body))


def parse_metadata(path: Any, metadata: dict[str, str]) -> dict[str, Any]:
    """The metadata's entries, JSON parsed (format and model stay strings); CheckpointError
    (naming `path`) for an entry that is not JSON."""
    out: dict[str, Any] = {}
    for k, v in metadata.items():
        if k in ("format", "model"):
            out[k] = v
            continue
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            raise CheckpointError(_("{path}: metadata entry {key} is not JSON").format(path=path, key=repr(k))) from None
    return out


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """format, model, config and the meta entries (JSON parsed), without loading tensors."""
    metadata = read_header(path)[1]
    return {k: v for k, v in parse_metadata(path, metadata).items() if not k.startswith("_")}


def read_trainer_summary(path: str | os.PathLike) -> dict[str, Any]:
    """A saved trainer state's step, items, elapsed seconds and history (Record fields, as
    dicts), read from the header alone: no tensor is loaded. {} when the file holds no trainer
    state. Raises CheckpointError for a file that is not a karp checkpoint."""
    _, metadata = read_header(path)
    if "_trainer" not in metadata:
        return {}
    state = parse_metadata(path, {"_trainer": metadata["_trainer"]})["_trainer"]
    return {k: state.get(k) for k in ("step", "items", "elapsed", "history")}
