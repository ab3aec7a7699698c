"""The quality figures of generated images against references: the Frechet distance against
scipy.linalg.sqrtm's formula (pytorch-fid's) and the closed form for Gaussians, coverage and
confidence by hand, pairwise distances against scipy, and the judge against the model it wraps."""
import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import pdist

from karp_models.introspect.embeddings import penultimate_features
from karp_models.introspect.generative import (FrechetReference, Judge, class_counts, confidence, coverage,
                                               frechet_distance, mean_pairwise_distance)
from karp_models.models import build


def fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance: sample means and covariances, sqrtm by scipy."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("seed,D", [(0, 3), (1, 8), (2, 16)])
def test_frechet_distance_matches_scipy_on_correlated_samples(seed, D):
    g = np.random.default_rng(seed)
    A, B = g.normal(size=(D, D)), g.normal(size=(D, D))
    a = g.normal(size=(400, D)) @ A
    b = g.normal(size=(300, D)) @ B + g.normal(size=D)
    got = frechet_distance(torch.tensor(a), torch.tensor(b))
    assert got == pytest.approx(fid_scipy(a, b), rel=1e-6)
    assert frechet_distance(torch.tensor(a), torch.tensor(a)) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_of_large_samples_approaches_the_closed_form():
    """N(m1, diag(v1)) and N(m2, diag(v2)): d = |m1 - m2|^2 + sum (sqrt v1 - sqrt v2)^2."""
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.tensor([0.0, 1.0, -1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 0.25, 1.0]), torch.tensor([1.0, 1.0, 1.0, 9.0])
    a = m1 + v1.sqrt() * torch.randn(200_000, 4, generator=g)
    b = m2 + v2.sqrt() * torch.randn(200_000, 4, generator=g)
    exact = float((m1 - m2).square().sum() + (v1.sqrt() - v2.sqrt()).square().sum())   # 6 + 5.25
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.01)


def test_a_reference_is_reused_and_symmetric():
    g = torch.Generator().manual_seed(0)
    real, x, y = (torch.randn(500, 6, generator=g) * s for s in (1.0, 2.0, 0.5))
    ref = FrechetReference(real)
    first = ref.distance(x)
    assert ref.distance(y) == pytest.approx(frechet_distance(real, y))
    assert ref.distance(x) == first == pytest.approx(frechet_distance(x, real))
    with pytest.raises(ValueError):
        ref.distance(x[:1])


def test_coverage_confidence_and_counts():
    K = 4
    even = torch.eye(K).repeat(25, 1)                                   # 100 sure samples, 25 per class
    assert coverage(even) == pytest.approx(1.0) and confidence(even) == pytest.approx(1.0)
    one = torch.full((100, K), 0.1)
    one[:, 2] = 0.7                                                      # collapse on class 2, unsure
    assert coverage(one) == pytest.approx(1 / K) and confidence(one) == pytest.approx(0.7)
    half = torch.eye(K)[torch.tensor([0] * 50 + [1] * 50)]
    assert coverage(half) == pytest.approx(2 / K)                       # exp(ln 2) classes of 4
    assert class_counts(half, K).tolist() == [50, 50, 0, 0]


def test_mean_pairwise_distance_matches_scipy():
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_distance(x) == pytest.approx(pdist(x.numpy().astype(np.float64)).mean(), rel=1e-9)
    assert mean_pairwise_distance(x[:1].repeat(4, 1)) == 0


def test_the_judge_gives_the_models_penultimate_features_and_probabilities():
    torch.manual_seed(0)
    model = build("fast", image_size=16).eval()
    for m in model.modules():                                            # BatchNorm with real statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2)
    x = (torch.rand(37, 1, 16, 16) * 255).to(torch.uint8)
    feats, probs = Judge(model, batch_size=8)(x)
    torch.testing.assert_close(feats.numpy(), penultimate_features(model, x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(probs, torch.softmax(model(x.float() / 255)[0], -1), rtol=1e-4, atol=1e-5)
