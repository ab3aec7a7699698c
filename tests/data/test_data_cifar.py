"""CIFAR-10 offline: a tiny copy in the python-batches layout (pickled dicts, as torchvision downloads
it) written by the test, read by an unpickler that builds numpy arrays and nothing else; the course
network with dropout and the fast CNN train on it."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models import data
from karp_models.data import images


def write_cifar(parent: Path, n: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/ in `parent`: five training batches and a test batch of n images each
    ('data' uint8 (n, 3072), channel-planar rows; 'labels'), and batches.meta. Returns the images
    (6n, 32, 32, 3) and labels as written."""
    rng = np.random.default_rng(seed)
    folder = parent / images.CIFAR_DIR
    folder.mkdir(parents=True)
    xs, ys = [], []
    for name in images.CIFAR_FILES[:-1]:
        hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {"batch_label": name, "labels": labels, "data": hwc.transpose(0, 3, 1, 2).reshape(n, 3072),
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        xs.append(hwc)
        ys += labels
    meta = {"label_names": list(images.CIFAR10_CLASSES), "num_cases_per_batch": n, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"x": np.concatenate(xs), "y": np.asarray(ys)}


def test_a_tiny_cifar_in_the_batches_layout_loads(tmp_path, empty_cache, no_network):
    written = write_cifar(tmp_path)
    d = data.load("cifar10", root=tmp_path)
    assert d.classes == images.CIFAR10_CLASSES and d.flip_ok
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (4, 3, 32, 32)
    got = np.concatenate([d.train_x.numpy(), d.test_x.numpy()]).transpose(0, 2, 3, 1)  # (N, H, W, C)
    np.testing.assert_array_equal(got, written["x"])                     # pixels, channels and order
    np.testing.assert_array_equal(np.concatenate([d.train_y, d.test_y]), written["y"])
    assert d.mean[0] == pytest.approx(d.train_x[:, 0].double().mean().item() / 255)


def test_torchvision_reads_the_same_tiny_file(tmp_path, monkeypatch):
    """The layout is torchvision's own: its CIFAR10 (integrity check aside) reads the same images."""
    import torchvision

    written = write_cifar(tmp_path)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    ref = torchvision.datasets.CIFAR10(str(tmp_path), train=False)
    np.testing.assert_array_equal(ref.data, written["x"][20:])
    assert ref.targets == written["y"][20:].tolist()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_batch_that_would_run_code_is_refused(tmp_path, empty_cache, monkeypatch):
    write_cifar(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / images.CIFAR_DIR / "data_batch_3").write_bytes(
        pickle.dumps({"data": _Evil(), "labels": [0]}, protocol=2))
    with pytest.raises(data.DatasetMissing, match="refused: it asks for (posix|os|nt).system"):
        data.load("cifar10", root=tmp_path)
    assert not (tmp_path / "pwned").exists()
    (tmp_path / images.CIFAR_DIR / "data_batch_3").write_bytes(b"\x80\x02}q\x00(X")   # cut short
    with pytest.raises(data.DatasetMissing, match="not a CIFAR-10 batch"):
        data.load("cifar10", root=tmp_path)


def test_labels_out_of_range_are_refused(tmp_path, empty_cache):
    write_cifar(tmp_path)
    bad = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}
    (tmp_path / images.CIFAR_DIR / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(data.DatasetMissing, match="wrong kind"):
        data.load("cifar10", root=tmp_path)


@pytest.mark.parametrize("model,preset", [("classic", "classic-dropout"), ("fast", "fast")])
def test_the_course_network_with_dropout_and_the_fast_cnn_train_on_it(model, preset, empty_cache, no_network):
    from karp_models.train.runs import RunSpec, build_run
    from karp_models.train.trainer import TrainConfig

    write_cifar(empty_cache / "torchvision", n=8)                         # where the download puts it
    assert data.status("cifar10").available
    torch.set_num_threads(1)
    spec = RunSpec(model=model, dataset="cifar10", preset=preset,
                   config=TrainConfig(steps=3, batch_size=8, eval_every=0))
    prepared = build_run(spec)
    cfg = prepared.trainer.model.config
    assert (cfg.in_channels, cfg.image_size, cfg.n_classes) == (3, 32, 10)
    assert cfg.dropout == (0.5 if preset == "classic-dropout" else 0.0)
    recs = list(prepared.trainer.run())
    assert recs[-1].final and recs[-1].step == 3 and 0 <= recs[-1].val_accuracy <= 1
