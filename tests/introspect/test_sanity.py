"""Cascading randomisation (Adebayo et al. 2018): top layer first, really new weights, the same
ones for the same seed, and the original model untouched."""
import numpy as np
import pytest
import torch

from karp_models.introspect import sanity as S
from karp_models.introspect.attribution import available


def _state(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_steps_go_from_the_top_down_with_norms_beside_their_convs(cnn):
    steps = S.randomisation_steps(cnn)
    assert steps[0].modules == ("classifier.fc",)
    assert steps[1].modules == ("features.stage3.conv2", "features.stage3.bn2")
    assert steps[-1].modules == ("features.stem.conv", "features.stem.bn")
    assert len(steps) == 8


def test_randomisation_changes_weights_reproducibly_and_leaves_the_original(cnn):
    original = _state(cnn)
    steps = S.randomisation_steps(cnn)

    def run(seed):
        out = []
        for step, m in S.randomised_copies(cnn, seed=seed, steps=steps[:2]):
            out.append((step, _state(m)))
        return out

    a, b, c = run(0), run(0), run(1)
    (s1, w1), (s2, w2) = a
    assert not torch.equal(w1["classifier.fc.weight"], original["classifier.fc.weight"])
    assert torch.equal(w1["features.stage3.conv2.weight"], original["features.stage3.conv2.weight"])
    assert not torch.equal(w2["features.stage3.conv2.weight"], original["features.stage3.conv2.weight"])
    assert torch.equal(w2["classifier.fc.weight"], w1["classifier.fc.weight"])       # cascading
    assert torch.equal(w2["features.stem.conv.weight"], original["features.stem.conv.weight"])
    for (_, wa), (_, wb) in zip(a, b):
        assert all(torch.equal(wa[k], wb[k]) for k in wa)                            # same seed
    assert not torch.equal(c[0][1]["classifier.fc.weight"], w1["classifier.fc.weight"])
    assert all(torch.equal(original[k], v) for k, v in cnn.state_dict().items())


def test_cascading_randomisation_reports_every_step(cnn):
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    calls = []
    original = _state(cnn)
    methods = available(cnn)                                                         # every method in the table
    res = S.cascading_randomisation(cnn, x, 1, methods, seed=3, progress=lambda d, n, m: calls.append((d, n)))
    n = len(S.randomisation_steps(cnn)) + 1
    assert calls == [(i, n) for i in range(1, n + 1)]
    assert len(res.steps) == n and res.steps[0] == "original model"
    assert list(res.correlation) == methods
    for k in methods:
        assert res.correlation[k][0] == 1.0 and len(res.correlation[k]) == n
        assert len(res.maps[k]) == n and res.maps[k][0].shape == (16, 16)
        assert isinstance(res.verdicts[k].text, str) and k in res.verdicts[k].text
    again = S.cascading_randomisation(cnn, x, 1, methods, seed=3)
    assert again.correlation == res.correlation
    assert all(torch.equal(original[k], v) for k, v in cnn.state_dict().items())


def test_verdicts_in_plain_words():
    assert S.verdict("Edges", [1.0, 0.9, 0.95], [1.0, 0.9, 0.9]).flagged
    assert "do not trust" in S.verdict("Edges", [1.0, 0.9, 0.95], [1.0, 0.9, 0.9]).text
    ok = S.verdict("Saliency", [1.0, 0.4, 0.05], [1.0, 0.3, 0.0])
    assert not ok.flagged and "passes" in ok.text


def test_rank_correlation():
    a = np.arange(16.0).reshape(4, 4)
    assert S.rank_correlation(a, a * 3) == pytest.approx(1.0)
    assert S.rank_correlation(a, -a, absolute=False) == pytest.approx(-1.0)
    assert S.rank_correlation(a, np.zeros_like(a)) == 0.0
