"""Fine-tuning through the one Trainer: the three modes (frozen layers untouched, BatchNorm
statistics included; the backbone at a lower learning rate; scratch from random weights), the
run on the job queue, save and reload without the backbone, resume, and the torchvision path with
weights in the torch hub cache written by the test (no network)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import socket

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image
from torch import nn

from karp_models import imagenet
from karp_models.data import own
from karp_models.data.base import image_data
from karp_models.introspect.evaluate import predict_probs
from karp_models.models import finetune as ftm
from karp_models.models import build
from karp_models.models.cnn import CNN, CNNConfig
from karp_models.train import finetune as ft
from karp_models.train import runs
from karp_models.train.checkpoints import load_checkpoint, save_checkpoint
from karp_models.train.runs import RunSpec, build_run
from karp_models.train.trainer import TrainConfig

SMALL_FAST = CNNConfig(arch="fast", widths=(4, 8, 8, 16), n_classes=10, mean=(0.29,), std=(0.35,))


@pytest.fixture()
def backbone_file(tmp_path):
    """A small trained-looking karp 'fast' CNN (with BatchNorm) saved as a Fashion-MNIST checkpoint."""
    torch.manual_seed(1)
    cnn = CNN(SMALL_FAST)
    for m in cnn.modules():                                   # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "weights" / "fast-fashion-mnist.safetensors"
    save_checkpoint(path, cnn, model_name="fast", meta={"dataset": "fashion-mnist", "classes": list("0123456789"),
                                                         "metrics": {"test_accuracy": 0.9, "test_loss": 0.3}})
    return path


def toy_data(n_per_class: int = 12, C: int = 1, S: int = 28, seed: int = 0):
    """Three classes told apart by where a bright square sits; 2 validation images a class."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, (3 * n_per_class, C, S, S), dtype=np.uint8)
    y = np.repeat(np.arange(3), n_per_class)
    for i, c in enumerate(y):
        x[i, :, 4:12, 4 + 8 * c:12 + 8 * c] = 220
    tr, va = own.split(y, 2 / n_per_class, seed=0)
    return image_data("toy", ("left", "middle", "right"), x[tr], y[tr], x[va], y[va], source="test",
                      note="2 validation images a class", flip_ok=False)


def spec(bb: ft.Backbone, mode: str, data, **cfg) -> RunSpec:
    c = dict(steps=6, batch_size=8, lr=1e-2, eval_every=0, augment=False, amp=False) | cfg
    return RunSpec(model="finetune", dataset=data.name, data=data, preset=mode, overrides=bb.fields,
                   config=TrainConfig(**c), device="cpu")


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- karp backbones


def test_a_karp_checkpoint_as_a_backbone_says_where_it_came_from(backbone_file, tmp_path):
    bb = ft.karp_backbone(backbone_file)
    assert bb.source == "karp" and bb.trained_on == "fashion-mnist" and bb.metrics.startswith("test acc 90.00%")
    assert bb.fields["weights"] == str(backbone_file.resolve())
    assert bb.fields["weights_sha256"] == hashlib.sha256(backbone_file.read_bytes()).hexdigest()
    assert bb.fields["arch"] == "fast" and bb.fields["backbone_config"]["widths"] == [4, 8, 8, 16]
    assert bb.input == own.InputFormat(1, 28, "fashion")
    vit = tmp_path / "weights" / "vit.safetensors"
    save_checkpoint(vit, build("vit", preset="tiny"), model_name="vit", meta={"dataset": "fashion-mnist"})
    with pytest.raises(ValueError, match="a backbone is one of karp's CNNs"):
        ft.karp_backbone(vit)
    listed = ft.backbones(runs_root=tmp_path / "runs", weights_dir=tmp_path / "weights")
    assert [b.key for b in listed] == [str(backbone_file)] + [f"torchvision:{a}" for a in ftm.TORCHVISION_ARCHS]


def test_head_mode_trains_the_head_and_nothing_else(backbone_file):
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    p = build_run(spec(bb, "head", data))
    model, pretrained = p.trainer.model, load_checkpoint(backbone_file).model.state_dict()
    before = state(model)
    for theirs, mine in model.pretrained_keys.items():        # the run starts from the checkpoint
        assert torch.equal(before[mine], pretrained[theirs]), mine
    groups = p.trainer.optimizer.param_groups
    assert sum(len(g["params"]) for g in groups) == 2 and all(g["lr_scale"] == 1.0 for g in groups)
    recs = list(p.trainer.run())
    after = state(model)
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"classifier.head.weight", "classifier.head.bias"}  # BatchNorm statistics too
    assert recs[-1].final and recs[-1].train_loss < recs[0].train_loss * 1.5


def test_whole_mode_trains_the_backbone_at_a_lower_learning_rate(backbone_file):
    """AdamW's first step moves each weight by about lr (its update is g / |g|): the backbone's
    biggest move is backbone_lr_scale times the head's."""
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    p = build_run(spec(bb, "whole", data, steps=1, schedule="constant", warmup=0.0, weight_decay=0.0,
                       grad_clip=0.0, lr=1e-3))
    model = p.trainer.model
    assert model.config.backbone_lr_scale == 0.1
    before = state(model)
    list(p.trainer.run())
    lrs = {g["lr_scale"]: g["lr"] for g in p.trainer.optimizer.param_groups}
    assert lrs == pytest.approx({0.1: 1e-4, 1.0: 1e-3})
    params = dict(model.named_parameters())
    moved = {k: (params[k].detach() - before[k]).abs().max().item() for k in params}
    head = max(moved["classifier.head.weight"], moved["classifier.head.bias"])
    backbone = max(v for k, v in moved.items() if not k.startswith("classifier.head"))
    assert head == pytest.approx(1e-3, rel=0.05) and backbone == pytest.approx(1e-4, rel=0.05)
    assert sum(v > 0 for v in moved.values()) == len(moved)  # every layer trained


def test_scratch_mode_is_the_same_architecture_from_random_weights(backbone_file):
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    p = build_run(spec(bb, "scratch", data, seed=7))
    model, pretrained = p.trainer.model, load_checkpoint(backbone_file).model.state_dict()
    torch.manual_seed(7)
    fresh = ftm.FineTune(bb.config(3, "scratch"))
    for theirs, mine in model.pretrained_keys.items():
        assert torch.equal(model.state_dict()[mine], fresh.state_dict()[mine]), mine
    w = "features.stem.conv.weight"
    assert not torch.equal(model.state_dict()[w], pretrained[w])
    assert all(p.requires_grad for p in model.parameters())
    assert {g["lr_scale"] for g in p.trainer.optimizer.param_groups} == {1.0}


def test_saved_reloads_without_the_backbone_and_resumes(backbone_file, tmp_path):
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    s = spec(bb, "head", data)
    p = build_run(s)
    recs = list(p.trainer.run())
    path = runs.save_run(tmp_path / "runs" / "mine.safetensors", s, p, {"test_accuracy": recs[-1].val_accuracy})
    backbone_file.unlink()                                    # the checkpoint holds every weight
    ck = load_checkpoint(path)
    assert ck.model_name == "finetune" and ck.meta["classes"] == ["left", "middle", "right"]
    assert ck.meta["dataset"] == "toy" and "validation" in ck.meta["data_note"]
    assert ck.model.config == p.trainer.model.config
    assert ck.model.config.weights.endswith("fast-fashion-mnist.safetensors")
    p.trainer.model.eval()
    np.testing.assert_allclose(predict_probs(ck.model, data.test_x), predict_probs(p.trainer.model, data.test_x),
                               atol=1e-6)
    assert [r.name for r in ftm.layer_table(ck.model) if r.trainable] == ["classifier.head"]
    with pytest.raises(ft.WeightsUnavailable, match="not here"):  # a new run would need it
        build_run(s)
    more = dataclasses.replace(s, resume_from=str(path), config=dataclasses.replace(s.config, steps=9))
    q = build_run(more)                                       # resuming does not
    before = state(q.trainer.model)
    list(q.trainer.run())
    assert q.trainer.step == 9
    after = state(q.trainer.model)
    assert {k for k in after if not torch.equal(after[k], before[k])} == {"classifier.head.weight",
                                                                          "classifier.head.bias"}


def test_a_changed_backbone_file_is_refused(backbone_file):
    bb = ft.karp_backbone(backbone_file)
    cnn = load_checkpoint(backbone_file).model
    with torch.no_grad():
        cnn.features.stem.conv.weight.add_(1)
    save_checkpoint(backbone_file, cnn, model_name="fast", meta={"dataset": "fashion-mnist"})
    with pytest.raises(ft.WeightsUnavailable, match="has changed since it was chosen"):
        ft.build_model(bb, 3)
    assert ft.build_model(bb, 3, mode="scratch").head.out_features == 3  # scratch needs no weights


def test_the_job_queue_runs_fine_tuning_unchanged(backbone_file, tmp_path):
    from karp_models.train.jobs import JobManager

    bb, data = ft.karp_backbone(backbone_file), toy_data()
    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False, grace_s=3600)  # no heartbeat here: a loaded machine must not reap it
    try:
        jids = [m.submit("s1", spec(bb, mode, data, eval_every=3, eval_batches=1)) for mode in ftm.MODES]
        for jid in jids:
            st = m.wait(jid, timeout=60)
            assert st.state == "done", st.error
            assert [r.step for r in st.records if r.val_accuracy is not None] == [3, 6]
        path = m.save(jids[1], "whole network")
        assert load_checkpoint(path).model.config.mode == "whole"
    finally:
        m.shutdown()


# ---------------------------------------------------------------------------- torchvision backbones


@pytest.fixture()
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)         # get_dir() reads TORCH_HOME again

    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return tmp_path / "torch"


def _tiny_vgg() -> nn.Module:
    """torchvision's VGG class with 2 conv blocks and a narrow classifier of the same shape."""
    net = tvm.VGG.__new__(tvm.VGG)
    nn.Module.__init__(net)
    net.features = tvm.vgg.make_layers([8, "M", 16, "M"])
    net.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    net.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 32), nn.ReLU(True),
                                   nn.Dropout(), nn.Linear(32, 1000))
    return net


TINY = {"resnet18": lambda: tvm.ResNet(tvm.resnet.BasicBlock, [1, 1, 1, 1]),
        "mobilenet_v3_large": lambda: tvm.mobilenet_v3_large(weights=None, width_mult=0.25), "vgg16": _tiny_vgg}


def _photo(kind: int, i: int) -> bytes:
    a = np.full((120, 160, 3), 230, np.uint8)
    a[30 + 3 * i:90, 20 + 50 * kind:60 + 50 * kind] = (200, 40, 40) if kind else (40, 40, 200)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("arch", ftm.TORCHVISION_ARCHS)
def test_torchvision_weights_from_the_hub_cache(arch, torch_home, tmp_path, monkeypatch):
    """The architecture is a small one of the same torchvision class; the file, its place in the
    hub cache and the loading code are the real ones."""
    monkeypatch.setattr(ftm, "torchvision_net", lambda a: TINY[a]())
    bb = ft.torchvision_backbone(arch)
    assert not bb.available and str(imagenet.cached_file(arch)) in bb.how_to_get
    with pytest.raises(ft.WeightsUnavailable, match=imagenet.cached_file(arch).name):
        ft.build_model(bb, 2)
    torch.manual_seed(3)
    ref = TINY[arch]().eval()
    f = imagenet.cached_file(arch)
    f.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), f)                           # the hub cache's layout
    bb = ft.torchvision_backbone(arch)
    assert bb.available and bb.input.size == 224 and bb.input.transform is not None

    built = own.build({"blue": [_photo(0, i) for i in range(4)], "red": [_photo(1, i) for i in range(4)]}, bb.input,
                      name="colours", val_fraction=0.25)
    assert built.data.train_x.shape[1:] == (3, 224, 224) and not built.rejected
    s = spec(bb, "head", built.data, steps=2, batch_size=4)
    p = build_run(s)
    model = p.trainer.model
    for theirs, mine in model.pretrained_keys.items():
        assert torch.equal(model.state_dict()[mine], ref.state_dict()[theirs]), mine
    list(p.trainer.run())
    path = runs.save_run(tmp_path / "tv.safetensors", s, p, {})
    f.unlink()                                                # reloading needs no hub cache
    ck = load_checkpoint(path)
    assert (ck.model.config.in_channels, ck.model.config.image_size) == (3, 224)
    x = torch.from_numpy(own.to_input(_photo(1, 2), bb.input))[None]
    model.eval()
    np.testing.assert_allclose(predict_probs(ck.model, x), predict_probs(model, x), atol=1e-5)
