"""Penultimate features (what the last Linear reads) and seeded, reproducible projections."""
import numpy as np
import pytest
import torch

from karp_models.introspect.embeddings import pca_2d, penultimate_features, penultimate_layer, tsne_2d
from karp_models.models import build


@pytest.mark.parametrize("name,preset,want", [
    ("classic", None, "classifier.dropout"), ("fast", "fast", "classifier.dropout"),
    ("tinyvgg", None, "classifier.dropout"), ("vit", "tiny", "ln_f"),
])
def test_features_are_what_the_last_linear_reads(name, preset, want):
    torch.manual_seed(0)
    m = build(name, preset=preset).eval()
    assert penultimate_layer(m) == want
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    f = penultimate_features(m, x, batch_size=2)
    head = m.head if name == "vit" else m.classifier[-1]
    assert f.shape == (5, head.in_features)
    with torch.no_grad():
        logits, _ = m(x.float() / 255)
        assert torch.allclose(head(torch.from_numpy(f)), logits, atol=1e-4)   # BN folded: rounding only


def _blobs(n=240, d=20, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(k, d))
    y = np.arange(n) % k
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_pca_is_deterministic_and_ordered():
    X, _ = _blobs()
    a, ra = pca_2d(X)
    b, _ = pca_2d(X.copy())
    assert a.shape == (len(X), 2) and np.array_equal(a, b)
    assert ra[0] >= ra[1] > 0


def test_tsne_same_seed_same_coords_other_seed_other_coords():
    X, y = _blobs()
    kw = dict(n_iter=100, exaggeration_iter=50, perplexity=20)
    seen = []
    a = tsne_2d(X, seed=1, progress=lambda f, s: seen.append(f), **kw)
    b = tsne_2d(X, seed=1, **kw)
    c = tsne_2d(X, seed=2, **kw)
    assert a.shape == (len(X), 2) and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-3)
    assert seen[0] == 0 and seen[-1] == 1 and seen == sorted(seen)
    # the projection keeps the blobs apart: each point's nearest neighbour is in its own blob
    d = ((a[:, None] - a[None]) ** 2).sum(-1) + np.eye(len(a)) * 1e9
    assert (y[d.argmin(1)] == y).mean() > 0.95
