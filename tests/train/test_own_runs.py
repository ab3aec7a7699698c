"""A person's own dataset beside the runs trained on it (runs.save_dataset / load_dataset: kept
with a saved run, the same images reuse their file, other images get another name, a run
continues from it), the three modes as RunSpecs (train.finetune.mode_spec) and the frozen-layer
blocks built on the meta device against the real model."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from karp_models import data as datasets
from karp_models.data import own
from karp_models.data.base import image_data
from karp_models.models import finetune as ftm
from karp_models.train import finetune as ft
from karp_models.train import runs
from karp_models.train.checkpoints import load_checkpoint, read_metadata

from test_finetune import backbone_file, spec, toy_data  # noqa: F401 - the fixture is used by name


def same_data(a, b) -> bool:
    return (a.classes == b.classes and all(torch.equal(getattr(a, k), getattr(b, k))
                                           for k in ("train_x", "train_y", "test_x", "test_y")))


# ---------------------------------------------------------------------------- kept beside the runs


def test_a_saved_run_keeps_its_dataset_and_continues_from_it(backbone_file, tmp_path):  # noqa: F811
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    s = spec(bb, "head", data)
    p = runs.build_run(s)
    list(p.trainer.run())
    path = runs.save_run(tmp_path / "runs" / "mine.safetensors", s, p, {})
    kept = tmp_path / "runs" / "datasets" / "toy.safetensors"
    assert kept.is_file() and read_metadata(path)["dataset"] == "toy"
    back = runs.load_dataset("toy", tmp_path / "runs")
    assert same_data(back, data) and back.name == "toy" and back.mean == pytest.approx(data.mean)

    more = runs.spec_from_run(path, steps=9)                  # no data in the spec: found by name
    assert more.data is None and more.dataset == "toy"
    q = runs.build_run(more)
    assert same_data(q.data, data)
    list(q.trainer.run())
    assert q.trainer.step == 9


def test_the_same_images_reuse_their_file_other_images_get_another_name(tmp_path):
    data = toy_data()
    assert runs.save_dataset(data, tmp_path).name == "toy"
    assert runs.save_dataset(dataclasses.replace(data, note="another note"), tmp_path).name == "toy"
    x = data.train_x.numpy().copy()
    x[0, 0, 0, 0] ^= 1                                        # one pixel differs
    other = image_data("toy", data.classes, x, data.train_y.numpy(), data.test_x.numpy(), data.test_y.numpy(),
                       source="test", flip_ok=False)
    kept = runs.save_dataset(other, tmp_path)
    assert kept.name == "toy-2" and same_data(runs.load_dataset("toy-2", tmp_path), other)
    assert same_data(runs.load_dataset("toy", tmp_path), data)       # the first is untouched
    named_like_karps = runs.save_dataset(dataclasses.replace(data, name="mnist"), tmp_path)
    assert named_like_karps.name == "mnist-2"                # never shadows a registry dataset
    hostile = runs.save_dataset(dataclasses.replace(data, name="../../etc/passwd"), tmp_path)
    assert (tmp_path / "datasets" / f"{hostile.name}.safetensors").is_file() and "/" not in hostile.name
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == sorted(
        f"{n}.safetensors" for n in ("toy", "toy-2", "mnist-2", hostile.name))
    with pytest.raises(datasets.UnknownDataset, match="not one of karp's"):
        runs.load_dataset("nothing-here", tmp_path)
    with pytest.raises(datasets.UnknownDataset):
        runs.load_dataset("../datasets/toy", tmp_path)        # a name, never a path


def test_a_damaged_kept_dataset_is_left_alone(tmp_path):
    data = toy_data()
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "toy.safetensors").write_bytes(b"not a dataset")
    assert runs.save_dataset(data, tmp_path).name == "toy-2"
    with pytest.raises(own.OwnDataError, match="cannot be read"):
        runs.load_dataset("toy", tmp_path)


# ---------------------------------------------------------------------------- the three modes as runs


def test_mode_spec_is_each_modes_recipe(backbone_file):  # noqa: F811
    bb, data = ft.karp_backbone(backbone_file), toy_data()
    specs = {m: ft.mode_spec(bb, data, m, steps=50, seed=3) for m in ftm.MODES}
    for m, s in specs.items():
        c = s.config
        assert (s.model, s.preset, s.data, s.dataset) == ("finetune", m, data, "toy")
        assert s.overrides == bb.fields and s.label == m
        assert c.lr == ft.MODE_LR["karp"][m] and (c.steps, c.seed, c.schedule) == (50, 3, "constant")
        assert c.batch_size == len(data.train_y) == 30         # never larger than the training split
        assert c.eval_every == 10 and c.eval_batches is None  # ~10 points on the whole validation split
    assert specs["head"].config.lr > specs["whole"].config.lr
    with pytest.raises(ValueError, match="unknown fine-tuning mode"):
        ft.mode_spec(bb, data, "half")
    rgb = toy_data(C=3, S=32)
    with pytest.raises(ValueError, match="backbone takes 1x28x28"):
        ft.mode_spec(bb, rgb, "head")


@pytest.mark.parametrize("mode", ftm.MODES)
def test_the_blocks_on_the_meta_device_are_the_real_models(backbone_file, mode):  # noqa: F811
    """layers_of builds no weights; its counts and states must be those of the model a run trains."""
    bb = ft.karp_backbone(backbone_file)
    real = ft.build_model(bb, 3, mode=mode)
    assert ft.layers_of(bb, 3, mode) == ftm.blocks(real)
    by_name = {b.name: b for b in ft.layers_of(bb, 3, mode)}
    assert sum(b.params for b in by_name.values()) == sum(p.numel() for p in real.parameters())
    assert sum(b.trainable for b in by_name.values()) == sum(p.numel() for p in real.parameters() if p.requires_grad)
    head = by_name.pop("classifier.head")
    assert head.new and head.trainable == head.params == 16 * 3 + 3   # 16 features -> 3 classes
    rest = list(by_name.values())
    if mode == "head":
        assert all(b.frozen and b.lr_scale == 0 for b in rest)
    else:
        assert all(b.trainable == b.params and b.lr_scale == (0.1 if mode == "whole" else 1.0) for b in rest)


def test_torchvisions_blocks_without_its_weights():
    bb = ft.torchvision_backbone("resnet18")                  # available or not: nothing is read
    blocks = ft.layers_of(bb, 5, "head")
    assert [b.name for b in blocks] == ["features.conv1", "features.bn1", "features.layer1", "features.layer2",
                                        "features.layer3", "features.layer4", "classifier.head"]
    assert sum(b.params for b in blocks) == 11_176_512 + 512 * 5 + 5     # ResNet-18 without its fc
    assert [b.frozen for b in blocks] == [True] * 6 + [False]


def test_a_run_from_mode_spec_trains_through_the_queue(backbone_file, tmp_path):  # noqa: F811
    from karp_models.train.jobs import JobManager

    bb, data = ft.karp_backbone(backbone_file), toy_data()
    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False, grace_s=3600)  # no heartbeat here: a loaded machine must not reap it
    try:
        jid = m.submit("s", ft.mode_spec(bb, data, "whole", steps=10, device="cpu"))
        st = m.wait(jid, timeout=60)
        assert st.state == "done", st.error
        assert [r.step for r in st.records if r.val_accuracy is not None] == [2, 4, 6, 8, 10]
        path = m.save(jid, "toy whole")
    finally:
        m.shutdown()
    ck = load_checkpoint(path)
    assert ck.meta["dataset"] == "toy" and (tmp_path / "runs" / "datasets" / "toy.safetensors").is_file()
    assert np.isclose(ck.meta["metrics"]["test_accuracy"], st.records[-1].val_accuracy)


def test_the_cli_reproduces_a_saved_own_run_from_its_kept_dataset(backbone_file, tmp_path, capsys):  # noqa: F811
    from karp_models import cli
    from karp_models.train.tasks.base import final_metrics

    bb, data = ft.karp_backbone(backbone_file), toy_data()
    s = spec(bb, "whole", data)
    p = runs.build_run(s)
    list(p.trainer.run())
    path = runs.save_run(tmp_path / "elsewhere" / "toy-whole.safetensors", s, p,
                         final_metrics(p.trainer.task, p.trainer.model, p.trainer.device))
    assert cli.main(["eval", "--weights", str(path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "on toy (test)" in out and "match" in out and "MISMATCH" not in out
    (tmp_path / "elsewhere" / "datasets" / "toy.safetensors").unlink()
    assert cli.main(["eval", "--weights", str(path), "--device", "cpu"]) == 1
    assert "not a set of your own classes" in capsys.readouterr().err


# ---------------------------------------------------------------------------- before and after (Evaluate's projector)


def test_the_pretrained_model_is_where_each_mode_started(backbone_file):  # noqa: F811
    """pretrained_model's features are the backbone checkpoint's own penultimate features; a head-only
    run keeps them (frozen), a whole-network run moves them."""
    from karp_models.introspect.embeddings import penultimate_features

    bb, data = ft.karp_backbone(backbone_file), toy_data()
    x = data.test_x
    ref = penultimate_features(load_checkpoint(backbone_file).model, x)
    before = ft.pretrained_model(bb.config(len(data.classes), "whole"))
    np.testing.assert_allclose(penultimate_features(before, x), ref, rtol=1e-5, atol=1e-6)
    feats = {}
    for mode in ("head", "whole"):
        torch.manual_seed(0)
        p = runs.build_run(spec(bb, mode, data))
        list(p.trainer.run())
        feats[mode] = penultimate_features(p.trainer.model.eval(), x)
    np.testing.assert_allclose(feats["head"], ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(feats["whole"], ref, atol=1e-4)


def test_knn_accuracy_is_sklearns_leave_one_out():
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    from karp_models.introspect.embeddings import knn_accuracy

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int) + (X[:, 1] > 1)
    ref = (cross_val_predict(KNeighborsClassifier(5), X, y, cv=LeaveOneOut()) == y).mean()
    assert knn_accuracy(X, y) == (pytest.approx(ref), 5)
    two = np.repeat([0, 1, 2], 2)                   # 2 images a class: 1-NN, so a class can win its vote
    assert knn_accuracy(np.repeat([[0.0], [5.0], [10.0]], 2, axis=0), two) == (1.0, 1)
    with pytest.raises(ValueError, match="at least 2 points"):
        knn_accuracy(X[:1], y[:1])
