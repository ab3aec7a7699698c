"""ui.compute's shared attribution cache: the uncached computation's result exactly, one
computation per weights, image, class and method however many sessions ask, never another
model's maps (a run retrained under the same name), and bounded by bytes."""
import copy
import threading

import numpy as np
import pytest
import torch

from karp_models.introspect import attribution as A
from karp_models.models.cnn import CNN, CNNConfig
from karp_models.ui import compute as cp

METHODS = ("Saliency", "Integrated Gradients", "SmoothGrad", "GradientSHAP", "DeepLift", "Grad-CAM",
           "Guided Grad-CAM", "Occlusion")


def _cnn(seed: int) -> CNN:
    torch.manual_seed(seed)
    return CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()


@pytest.fixture()
def fresh(monkeypatch):
    lru = cp.cache.SharedLRU(10_000, max_bytes=cp.ATTRIBUTIONS.max_bytes, sizeof=cp._attribution_bytes)
    monkeypatch.setattr(cp, "ATTRIBUTIONS", lru)
    return lru


def _img(seed: int) -> np.ndarray:
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(seed)).numpy()


def test_cached_is_the_uncached_computation_exactly(fresh):
    model, x_np = _cnn(0), _img(1)
    got = cp.cached_attributions(model, x_np, 3, METHODS)
    x = torch.from_numpy(x_np)
    for m in METHODS:
        want = A.attribute(A.inference_copy(model, x), x, 3, m, seed=cp.SEED, n_steps=cp.N_STEPS)
        assert np.array_equal(got[m].attr, want.attr) and np.array_equal(got[m].map, want.map), m
        assert got[m].delta == want.delta, m
        plain = A.attribute(model, x, 3, m)                           # and the model itself, to float error
        np.testing.assert_allclose(got[m].attr, plain.attr, rtol=0, atol=1e-4 * (np.abs(plain.attr).max() or 1))
    again = cp.cached_attributions(model, x_np, 3, METHODS)
    assert all(again[m] is got[m] for m in METHODS) and fresh.builds == len(METHODS)
    with pytest.raises(ValueError):                                  # shared: read-only
        got["Saliency"].map[0, 0] = 1.0


def test_keyed_by_the_weights_not_the_name(fresh):
    x_np = _img(2)
    model = _cnn(0)
    first = cp.cached_attributions(model, x_np, 1, ("Saliency", "Occlusion"))
    retrained = _cnn(7)                                               # same architecture, other weights
    second = cp.cached_attributions(retrained, x_np, 1, ("Saliency", "Occlusion"))
    assert fresh.builds == 4
    want = A.attribute(retrained, torch.from_numpy(x_np), 1, "Saliency").map
    np.testing.assert_allclose(second["Saliency"].map, want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert not np.allclose(second["Saliency"].map, first["Saliency"].map)
    twin = copy.deepcopy(model)                                       # the same weights loaded again
    assert cp.cached_attributions(twin, x_np, 1, ("Saliency",))["Saliency"] is first["Saliency"]
    with torch.no_grad():
        twin.classifier.fc.weight.add_(0.5)                           # trained on in place
    assert cp.cached_attributions(twin, x_np, 1, ("Saliency",))["Saliency"] is not first["Saliency"]
    other_class = cp.cached_attributions(model, x_np, 2, ("Saliency",))["Saliency"]
    assert other_class is not first["Saliency"] and fresh.builds == 6


def test_a_class_asking_at_once_computes_each_method_once(fresh, monkeypatch):
    model, x_np, calls = _cnn(0), _img(3), []
    real = A.attribute

    def counted(*a, **k):
        calls.append(a[3])
        return real(*a, **k)
    monkeypatch.setattr(cp.attr, "attribute", counted)
    out, go = [None] * 12, threading.Barrier(12)

    def student(i):
        go.wait()
        out[i] = cp.cached_attributions(model, x_np, 0, METHODS)
    threads = [threading.Thread(target=student, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == sorted(METHODS)
    assert all(o[m] is out[0][m] for o in out for m in METHODS)


def test_bounded_by_bytes_over_a_long_class(monkeypatch):
    assert cp.ATTRIBUTIONS.max_bytes <= 256 * 2**20                  # the app's own: a bound in bytes
    one = cp._attribution_bytes(A.attribute(_cnn(0), torch.from_numpy(_img(0)), 0, "Saliency"))
    lru = cp.cache.SharedLRU(10_000, max_bytes=5 * one, sizeof=cp._attribution_bytes)
    monkeypatch.setattr(cp, "ATTRIBUTIONS", lru)
    model = _cnn(0)
    for k in range(12):
        cp.cached_attributions(model, _img(100 + k), 0, ("Saliency",))
        assert lru.nbytes <= 5 * one
    assert len(lru) == 5 and lru.builds == 12
