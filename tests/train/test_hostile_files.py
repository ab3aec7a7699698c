"""Hostile weight files (issue 9): each is refused with a clear CheckpointError and nothing in it
runs or gets allocated. The forgeries start from a shipped file (read, never written) and change
only its header, so every other part of the file is genuine.

Images crafted to exhaust memory are the Predict page's tests. karp reads no archive a person
gives it; the last test checks that, and that a zip offered as weights is refused unopened.
"""
from __future__ import annotations

import json
import os
import pickle
import struct
import time
import zipfile
from pathlib import Path

import pytest
import torch

from karp_models.train.checkpoints import CheckpointError, load_checkpoint, read_metadata

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "weights" / "fast-fashion-mnist.safetensors"
VIT = ROOT / "weights" / "vit-fashion-mnist.safetensors"


def split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def forge(tmp_path: Path, name: str, header: dict, body: bytes, *,
          length: int | None = None) -> Path:
    h = json.dumps(header).encode()
    p = tmp_path / f"{name}.safetensors"
    p.write_bytes(struct.pack("<Q", len(h) if length is None else length) + h + body)
    return p


@pytest.fixture(scope="module")
def genuine() -> tuple[dict, bytes]:
    return split(SHIPPED)


def tensors(header: dict) -> list[str]:
    """Tensor names by position in the data, first first."""
    return sorted((k for k in header if k != "__metadata__"),
                  key=lambda k: header[k]["data_offsets"][0])


def refused(path: Path, match: str) -> str:
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 2.0  # refused at once, not after building anything big
    return str(e.value)


def test_the_genuine_file_loads(genuine, tmp_path):
    header, body = genuine
    ck = load_checkpoint(forge(tmp_path, "copy", header, body))
    assert ck.model_name == "fast"


# --- pickles


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("kind", ["raw-pickle", "torch-save-zip", "pickle-protocol-0"])
def test_pickle_with_code_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "payload-ran"
    p = tmp_path / "weights.safetensors"
    if kind == "raw-pickle":
        p.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    elif kind == "torch-save-zip":
        torch.save({"state_dict": _Payload(marker)}, p)
    else:
        p.write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    for fn in (load_checkpoint, read_metadata):
        with pytest.raises(CheckpointError, match="pickle|not a safetensors"):
            fn(p)
    assert not marker.exists()


# --- mismatched architecture


def test_weights_of_one_model_named_as_another(genuine, tmp_path):
    header, body = genuine
    meta = dict(header["__metadata__"], model="vit")
    refused(forge(tmp_path, "as-vit", {**header, "__metadata__": meta}, body),
            "cannot rebuild model 'vit'")


def test_config_that_does_not_match_the_tensors(tmp_path):
    header, body = split(VIT)
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["n_embd"] = cfg["n_embd"] * 2
    meta = dict(header["__metadata__"], config=json.dumps(cfg))
    msg = refused(forge(tmp_path, "wide", {**header, "__metadata__": meta}, body), "do not fit")
    assert "shape mismatch" in msg


def test_renamed_tensor(genuine, tmp_path):
    header, body = genuine
    first = tensors(header)[0]
    h = {("evil." + k if k == first else k): v for k, v in header.items()}
    msg = refused(forge(tmp_path, "renamed", h, body), "do not fit")
    assert "missing" in msg and "unexpected" in msg


def test_same_size_wrong_dtype_is_not_silently_converted(genuine, tmp_path):
    header, body = genuine
    h = json.loads(json.dumps(header))
    k = next(k for k in tensors(h) if h[k]["dtype"] == "I64")  # a BatchNorm counter
    h[k]["dtype"] = "F64"  # same 8 bytes: safetensors alone would accept it
    refused(forge(tmp_path, "f64", h, body), "dtype mismatch")


def test_config_describing_a_giant_model_allocates_nothing(genuine, tmp_path, monkeypatch):
    """A few-MB file whose config claims 2**27 classes (a 100 GB model): refused from its header.
    The registry is watched: the model may be built only on the meta device (no memory)."""
    import karp_models.models as models

    header, body = genuine
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["n_classes"] = 2**27
    p = forge(tmp_path, "giant", {**header, "__metadata__": dict(
        header["__metadata__"], config=json.dumps(cfg))}, body)
    real, builds = models.from_config, []

    def watched(name, config):
        builds.append(torch.get_default_device().type)
        assert builds[-1] == "meta", "a 100 GB model was about to be allocated"
        return real(name, config)

    monkeypatch.setattr(models, "from_config", watched)
    assert "shape mismatch" in refused(p, "do not fit")
    assert builds == ["meta"]


# --- forged headers


def test_huge_header_length(genuine, tmp_path):
    header, body = genuine
    for length in (2**63, 2**40, 100 * 2**20 + 1):
        p = forge(tmp_path, f"len{length}", header, body, length=length)
        refused(p, "not a safetensors file")
        with pytest.raises(CheckpointError):
            read_metadata(p)


def test_offsets_out_of_range(genuine, tmp_path):
    header, body = genuine
    h = json.loads(json.dumps(header))
    last = tensors(h)[-1]
    a, b = h[last]["data_offsets"]
    h[last]["data_offsets"] = [a, b + 10**12]
    refused(forge(tmp_path, "oob", h, body), "forged or damaged")


def test_overlapping_tensors(genuine, tmp_path):
    header, body = genuine
    h = json.loads(json.dumps(header))
    by_kind: dict[tuple, list[str]] = {}
    for k in tensors(h):
        by_kind.setdefault((h[k]["dtype"], tuple(h[k]["shape"])), []).append(k)
    k1, k2 = next(v for v in by_kind.values() if len(v) > 1)[:2]
    h[k2]["data_offsets"] = h[k1]["data_offsets"]  # two tensors read the same bytes
    refused(forge(tmp_path, "overlap", h, body), "overlaps|gap|cover")


def test_shape_larger_than_the_bytes(genuine, tmp_path):
    header, body = genuine
    h = json.loads(json.dumps(header))
    k = tensors(h)[0]
    h[k]["shape"] = [2**40]
    refused(forge(tmp_path, "shape", h, body), "claims")


def test_dtype_whose_size_does_not_match(genuine, tmp_path):
    header, body = genuine
    h = json.loads(json.dumps(header))
    k = next(k for k in tensors(h) if h[k]["dtype"] == "F32")
    h[k]["dtype"] = "F16"  # half the bytes the offsets span
    refused(forge(tmp_path, "f16", h, body), "claims")
    h[k]["dtype"] = "NOPE"
    refused(forge(tmp_path, "nope", h, body), "forged or damaged")


def test_truncated_data(genuine, tmp_path):
    header, body = genuine
    refused(forge(tmp_path, "short", header, body[:-100]), "forged or damaged|cover")


def test_metadata_that_is_not_strings_or_nests_forever(genuine, tmp_path):
    header, body = genuine
    refused(forge(tmp_path, "list", {**header, "__metadata__": ["x"]}, body), "map of strings")
    deep = dict(header["__metadata__"], metrics="[" * 100_000 + "]" * 100_000)
    refused(forge(tmp_path, "deep", {**header, "__metadata__": deep}, body), "not JSON")
    h = json.dumps({**header, "x": {"y": "[" * 100_000}})  # a nesting bomb in the header itself
    deep_header = h[:-1] + ', "z": ' + "[" * 100_000 + "]" * 100_000 + "}"
    p = tmp_path / "deep-header.safetensors"
    p.write_bytes(struct.pack("<Q", len(deep_header)) + deep_header.encode() + body)
    refused(p, "not a safetensors file|forged")


# --- archives


def test_a_zip_bomb_offered_as_weights_is_refused_unopened(tmp_path):
    p = tmp_path / "bomb.safetensors"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.pkl", b"\0" * (64 << 20))  # 64 MB of zeros in ~64 kB
    assert p.stat().st_size < 1 << 20
    msg = refused(p, "pickle")
    assert "never unpickles" in msg


def test_karp_opens_no_archive_a_person_gives_it():
    """Archives are read in one place: data/formats.py's gzip for dataset files in fixed system
    folders (Debian's package or KARP_FASHION_MNIST_DIR), never an upload. If that changes, this
    test fails and a bomb test must come with the new reader."""
    users = {}
    for f in list((ROOT / "karp_models").rglob("*.py")) + list((ROOT / "pages").glob("*.py")):
        text = f.read_text()
        for mod in ("zipfile", "tarfile", "gzip", "lzma", "bz2", "shutil.unpack_archive"):
            if f"import {mod}" in text or f"{mod}." in text.replace("import ", ""):
                users.setdefault(mod, []).append(str(f.relative_to(ROOT)))
    assert users in ({}, {"gzip": ["karp_models/data/formats.py"]}), users


def test_continuing_a_forged_run_fails_as_a_message_without_allocating(genuine, tmp_path):
    """'Continue' on a saved run whose config was forged: the job fails with the refusal."""
    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import spec_from_run

    header, body = genuine
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["n_classes"] = 2**27
    meta = dict(header["__metadata__"], config=json.dumps(cfg))
    meta["train"] = json.dumps({"config": {"steps": 10}, "steps": 10})
    p = forge(tmp_path, "forged-run", {**header, "__metadata__": meta}, body)
    mgr = JobManager(runs_dir=tmp_path, set_threads=False)
    try:
        st = mgr.wait(mgr.submit("s", spec_from_run(p)), timeout=30)
    finally:
        mgr.shutdown(timeout=10)
    assert st.state == "error" and "shape mismatch" in st.error, st.error
