"""Checkpoints: exact round trips, atomic writes, resume through a file, refusal of bad files."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import threading

import pytest
import torch
from safetensors.torch import save_file

from karp_models.train import checkpoints as ck
from karp_models.train.checkpoints import (CheckpointError, load_checkpoint, load_trainer_state,
                                           read_metadata, save_checkpoint)
from karp_models.train.tasks import ImageClassification
from karp_models.train.trainer import TrainConfig, Trainer
from train_helpers import (TinyLM, TinyLMConfig, TinyNet, TinyNetConfig, install_fake_registry,
                           quadrant_images)

META = {"dataset": "quadrants", "classes": ["tl", "tr", "bl", "br"],
        "metrics": {"test_accuracy": 0.75, "test_loss": 0.5}, "train": {"steps": 3, "time_s": 0.1}}


@pytest.fixture
def registry(monkeypatch):
    return install_fake_registry(monkeypatch)


def trained_net(steps: int = 5) -> tuple[TinyNet, Trainer]:
    torch.manual_seed(0)
    model = TinyNet(TinyNetConfig(hidden=16))
    cfg = TrainConfig(steps=steps, batch_size=32, eval_every=0)
    tr = Trainer(model, ImageClassification(quadrant_images()), cfg)
    list(tr.run())
    return model, tr


# --- round trips


def test_round_trip_is_bit_exact_with_metadata(tmp_path, registry):
    model, _ = trained_net()
    path = save_checkpoint(tmp_path / "net.safetensors", model, model_name="tinynet", meta=META)
    c = load_checkpoint(path)
    assert c.model_name == "tinynet" and c.path == path and not c.model.training
    assert c.config == dataclasses.asdict(model.config) and c.meta == META
    a, b = model.state_dict(), c.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    md = read_metadata(path)
    assert md == {"format": "karp-1", "model": "tinynet", "config": c.config, **META}
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x)[0], c.model(x)[0])


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path, registry):
    torch.manual_seed(0)
    lm = TinyLM(TinyLMConfig())
    path = save_checkpoint(tmp_path / "lm.safetensors", lm, model_name="tinylm",
                           meta={"vocab": list("abcd")})
    c = load_checkpoint(path)
    assert c.model.lm_head.weight is c.model.wte.weight
    assert torch.equal(c.model.wte.weight, lm.wte.weight) and c.meta == {"vocab": list("abcd")}


def test_resume_through_a_file_continues_the_same_loss_curve(tmp_path, registry):
    def fresh(seed):
        torch.manual_seed(seed)
        model = TinyNet(TinyNetConfig(hidden=16))
        cfg = TrainConfig(steps=16, batch_size=32, eval_every=0, lr=0.01)
        return Trainer(model, ImageClassification(quadrant_images()), cfg)

    ref = [r.train_loss for r in fresh(0).run(log_every=1) if not r.final]
    first, stop, part1 = fresh(0), threading.Event(), []
    for r in first.run(stop=stop, log_every=1):
        part1.append(r)
        stop.set() if r.step == 8 else None
    path = save_checkpoint(tmp_path / "run.safetensors", first.model, model_name="tinynet",
                           meta={"dataset": "quadrants"}, trainer=first)
    assert read_metadata(path)["train"]["steps"] == 8  # filled in from the trainer
    second = fresh(42)
    load_trainer_state(path, second)
    assert second.step == 8 and second.history == first.history
    s1, s2 = first.optimizer.state_dict(), second.optimizer.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i, st in s1["state"].items():
        assert all(torch.equal(v, s2["state"][i][k]) for k, v in st.items())
    got = [r.train_loss for r in part1 if not r.final] + [
        r.train_loss for r in second.run(log_every=1) if not r.final]
    assert got == ref  # bit-exact on the CPU
    # the same file is also an ordinary weights file
    assert load_checkpoint(path).model.state_dict().keys() == first.model.state_dict().keys()


def test_resume_needs_trainer_state(tmp_path, registry):
    model, tr = trained_net()
    path = save_checkpoint(tmp_path / "w.safetensors", model, model_name="tinynet", meta={})
    with pytest.raises(CheckpointError, match="no trainer state"):
        load_trainer_state(path, tr)


# --- atomic writes


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, fail_at, registry):
    model, _ = trained_net(steps=1)
    path = tmp_path / "net.safetensors"
    save_checkpoint(path, model, model_name="tinynet", meta={"dataset": "old"})
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, fail_at, boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, model_name="tinynet", meta={"dataset": "new"})
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "other.safetensors", model, model_name="tinynet", meta={})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["net.safetensors"]  # no temporary, no partial file
    assert path.read_bytes() == before and read_metadata(path)["dataset"] == "old"


# --- refusals


class _Payload:
    """Unpickling this creates a directory: proof that code in a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_offered_as_weights_is_refused_without_running_it(tmp_path, registry):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe)))
    assert probe.exists()  # the payload does run when unpickled

    marker = tmp_path / "pwned"
    raw = tmp_path / "model.safetensors"
    raw.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    zipped = tmp_path / "model.pt"
    torch.save({"weights": _Payload(marker)}, zipped)
    legacy = tmp_path / "legacy.bin"
    legacy.write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    model, tr = trained_net(steps=1)
    for f in (raw, zipped, legacy):
        for fn in (load_checkpoint, read_metadata, lambda p: load_trainer_state(p, tr)):
            with pytest.raises(CheckpointError, match="pickle|not a safetensors"):
                fn(f)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(zipped)
    assert not marker.exists()


def test_a_header_length_that_looks_like_a_pickle_opcode_is_fine(tmp_path, registry):
    model, _ = trained_net(steps=1)
    path = tmp_path / "x.safetensors"
    for n in range(0, 2000, 8):  # pad the header until its length reads b"\x80\x0[2-5]"
        save_checkpoint(path, model, model_name="tinynet", meta={"note": "x" * n})
        head = path.read_bytes()[:2]
        if head[0] == 0x80 and 2 <= head[1] <= 5:  # like the start of a pickle
            break
    else:
        pytest.fail("no padding gave the wanted header length")
    assert load_checkpoint(path).meta["note"] == "x" * n


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_garbage_and_truncated_files(tmp_path, registry):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        read_metadata(junk)
    junk.write_text("x" * 100)
    with pytest.raises(CheckpointError, match="not a safetensors"):
        read_metadata(junk)
    model, _ = trained_net(steps=1)
    good = save_checkpoint(tmp_path / "good.safetensors", model, model_name="tinynet", meta={})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_checkpoint(cut)


def test_wrong_or_missing_format_tag(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="no karp format tag"):
        read_metadata(plain)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, other, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="has format 'pt'"):
        load_checkpoint(other)


def test_unknown_model_name(tmp_path, registry):
    model, _ = trained_net(steps=1)
    path = save_checkpoint(tmp_path / "x.safetensors", model, model_name="nosuchnet", meta={})
    with pytest.raises(CheckpointError, match="unknown model 'nosuchnet'.*tinynet"):
        load_checkpoint(path)


def test_mismatched_tensors(tmp_path, registry):
    model, _ = trained_net(steps=1)
    path = tmp_path / "x.safetensors"
    save_checkpoint(path, model, model_name="tinynet", meta={})
    # the stored config says hidden=16; pretend it said 24: tensors no longer fit
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        md = f.metadata()
    md["config"] = json.dumps({**json.loads(md["config"]), "hidden": 24})
    save_file(tensors, path, metadata=md)
    with pytest.raises(CheckpointError, match="shape mismatch.*fc.weight"):
        load_checkpoint(path)
    del tensors["head.bias"]
    md["config"] = json.dumps(dataclasses.asdict(model.config))
    save_file(tensors, path, metadata=md)
    with pytest.raises(CheckpointError, match=r"missing \['head.bias'\]"):
        load_checkpoint(path)


def test_reserved_meta_keys_are_rejected(tmp_path):
    model, _ = trained_net(steps=1)
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.safetensors", model, model_name="tinynet", meta={"config": 1})


# --- with the real registry


@pytest.mark.parametrize("name,kw", [
    ("tinyvgg", {}), ("vit", {"preset": "tiny"}),
    ("lstm", {"preset": "tiny", "vocab_size": 4, "dropout": 0.1}),
    ("gpt", {"preset": "nano", "vocab_size": 4, "tie_weights": True, "dropout": 0.1}),
])
def test_real_models_train_save_load_and_resume(tmp_path, name, kw):
    from karp_models.models import REGISTRY, build
    from karp_models.train.tasks import make_task
    from train_helpers import cyclic_text

    text = REGISTRY[name].task == "text"
    data = cyclic_text(n_train=600, n_val=101) if text else quadrant_images(64, 40, size=28)
    torch.manual_seed(0)
    model = build(name, **kw) if text else build(name, n_classes=4, **kw)
    cfg = TrainConfig(steps=3, batch_size=8, eval_every=0)
    tr = Trainer(model, make_task(data, model), cfg)
    rec = list(tr.run())[-1]
    path = save_checkpoint(tmp_path / f"{name}.safetensors", model, model_name=name,
                           meta={"metrics": {"val_loss": rec.val_loss}}, trainer=tr)
    c = load_checkpoint(path)  # the real karp_models.models.from_config
    a, b = model.state_dict(), c.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert c.meta["metrics"] == {"val_loss": rec.val_loss}
    again = make_task(data, c.model).evaluate(c.model, "cpu")
    assert again["loss"] == pytest.approx(rec.val_loss, abs=1e-6)
    fresh = Trainer(build(name, **kw) if text else build(name, n_classes=4, **kw),
                    make_task(data, model), cfg)
    load_trainer_state(path, fresh)
    assert fresh.step == 3 and fresh.history == tr.history


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    """A shared runs folder (issue 26): files another app server or worker must read get the
    mode open() would give under the umask, not mkstemp's owner-only 0o600."""
    import stat

    from karp_models.train.checkpoints import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", b"x")
        (tmp_path / "b.bin").write_bytes(b"x")
        os.umask(0o077)
        atomic_write(tmp_path / "c.bin", b"x")
    finally:
        os.umask(old)
    mode = lambda n: stat.S_IMODE((tmp_path / n).stat().st_mode)  # noqa: E731
    assert mode("a.bin") == mode("b.bin") == 0o644
    assert mode("c.bin") == 0o600
