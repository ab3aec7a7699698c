"""Evaluation metrics against scikit-learn on fixed predictions; ECE by hand; orderings."""
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from torch import nn

from karp_models.introspect.evaluate import (
    accuracy,
    cell_indices,
    confusion,
    disagreement,
    fused_for_inference,
    misclassified,
    per_class,
    predict_probs,
    reliability,
    row_normalised,
    top_k,
    wilson_interval,
)


@pytest.fixture(scope="module")
def fixed():
    """Fixed labels and probabilities over 5 classes; class 4 is never predicted, class 3 is
    never true, so the zero-division rules are exercised."""
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2, 4], size=400)
    logits = rng.normal(size=(400, 5))
    logits[np.arange(400), labels] += rng.uniform(0, 3, size=400)   # mostly right
    logits[:, 4] -= 100                                              # never predicted
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


def test_confusion_and_accuracy_match_sklearn(fixed):
    probs, labels = fixed
    pred = probs.argmax(1)
    cm = confusion(labels, pred, 5)
    assert np.array_equal(cm, confusion_matrix(labels, pred, labels=range(5)))
    want = confusion_matrix(labels, pred, labels=range(5), normalize="true")
    assert np.allclose(row_normalised(cm), np.nan_to_num(want))
    acc = accuracy(pred, labels)
    assert acc.value == pytest.approx(accuracy_score(labels, pred))
    assert acc.low < acc.value < acc.high and acc.n == 400


def test_per_class_matches_sklearn(fixed):
    probs, labels = fixed
    pred = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=range(5), zero_division=0)
    got = per_class(confusion(labels, pred, 5))
    assert np.allclose(got.precision, p) and np.allclose(got.recall, r)
    assert np.allclose(got.f1, f) and np.array_equal(got.support, s)


def test_wilson_interval_known_values():
    # 81 of 263 at 95%: Wilson (1927) / Newcombe (1998) example 0.2553 .. 0.3662
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1, abs=1e-12)


def test_ece_hand_computed():
    # 4 examples, 2 bins: (0, .5], (.5, 1]
    probs = np.array([[0.9, 0.1],    # conf .9, right  -> bin 1
                      [0.8, 0.2],    # conf .8, wrong  -> bin 1
                      [0.3, 0.7],    # conf .7, right  -> bin 1
                      [0.5, 0.5]])   # conf .5, pred 0, wrong -> bin 0
    labels = np.array([0, 1, 1, 1])
    r = reliability(probs, labels, n_bins=2)
    assert r.counts.tolist() == [1, 3]
    assert r.confidence[1] == pytest.approx(0.8) and r.accuracy[1] == pytest.approx(2 / 3)
    assert r.confidence[0] == pytest.approx(0.5) and r.accuracy[0] == 0
    # ECE = 1/4 * |0 - .5| + 3/4 * |2/3 - .8| = .125 + .1 = .225
    assert r.ece == pytest.approx(0.225)


def test_ece_perfectly_calibrated_is_zero():
    probs = np.array([[1.0, 0.0]] * 3)
    assert reliability(probs, np.zeros(3, int)).ece == 0


def test_gallery_and_cell_order():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 0, 0, 1])
    assert misclassified(probs, labels).tolist() == [3, 1, 2]
    assert cell_indices(probs, labels, 0, 1).tolist() == [3, 1, 2]
    assert cell_indices(probs, labels, 0, 0).tolist() == [0, 4]
    assert top_k(probs[2], 3) == [(1, pytest.approx(0.6)), (0, pytest.approx(0.4))]


def test_disagreement_groups_and_table():
    labels = np.array([0, 1, 0, 1, 2])
    a = np.eye(3)[[0, 1, 1, 0, 0]] * 0.9 + 0.1 / 3   # A right on 0, 1
    b = np.eye(3)[[0, 0, 0, 1, 1]] * 0.9 + 0.1 / 3   # B right on 0, 2, 3
    d = disagreement(a, b, labels)
    assert sorted(d.indices.tolist()) == [1, 2, 3, 4]
    assert d.a_right.tolist() == [1] and sorted(d.b_right.tolist()) == [2, 3] and d.both_wrong.tolist() == [4]
    assert d.table.tolist() == [[1, 2], [1, 1]] and d.rate == pytest.approx(0.8)


def test_fused_copy_matches_and_leaves_model_alone():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 36, 3))
    m[1].running_mean.uniform_(-1, 1)
    m[1].running_var.uniform_(0.5, 2)
    m.eval()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = m

        def forward(self, x, targets=None):
            return self.net(x), None

    x = torch.randint(0, 256, (9, 1, 6, 6), dtype=torch.uint8)
    f = fused_for_inference(m)
    assert isinstance(f[1], nn.Identity) and isinstance(m[1], nn.BatchNorm2d)
    slow = predict_probs(Wrap(), x, batch_size=4, fuse=False)
    fast = predict_probs(Wrap(), x, batch_size=4)
    assert np.allclose(slow, fast, atol=1e-5)


def test_mcnemar_exact():
    from scipy.stats import binomtest

    from karp_models.introspect.evaluate import mcnemar_p
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(3, 17) == pytest.approx(binomtest(3, 20, 0.5).pvalue)
    assert mcnemar_p(30, 70) == pytest.approx(binomtest(30, 100, 0.5).pvalue)
