"""Deletion and insertion on a model that only looks at one pixel; Captum's infidelity and
max-sensitivity on a tiny CNN, one table row per method."""
import numpy as np
import pytest
import torch
from torch import nn

from karp_models.introspect import attribution as A
from karp_models.introspect import faithfulness as F
from karp_models.models.cnn import CNN, CNNConfig

PIXEL = (2, 5)


class OnePixel(nn.Module):
    """Two classes; the logit gap is 8 * the value of one pixel, nothing else matters."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(8.0))

    def forward(self, x, targets=None):
        v = x[:, 0, PIXEL[0], PIXEL[1]]                                  # (B,)
        return torch.stack([self.w * v, torch.zeros_like(v)], -1), None  # (B, 2)


@pytest.fixture(scope="module")
def x():
    return 0.5 + 0.5 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_deletion_drops_at_the_one_pixel_first(x):
    model = OnePixel()
    sal = A.attribute(model, x, 0, "Saliency")
    assert np.unravel_index(np.abs(sal.map).argmax(), sal.map.shape) == PIXEL
    d = F.deletion_curve(A.Logits(model), x, sal.map, 0, steps=None)   # one pixel per step
    assert len(d.prob) == 65 and d.prob[0] > 0.98
    assert d.prob[1] == pytest.approx(0.5)                               # gone at the first step
    assert np.allclose(d.prob[1:], 0.5)
    worst = -sal.map                                                     # the pixel ranked last
    d_bad = F.deletion_curve(A.Logits(model), x, worst, 0, steps=None)
    assert np.allclose(d_bad.prob[:-1], d.prob[0]) and d_bad.prob[-1] == pytest.approx(0.5)
    assert d.auc < d_bad.auc
    ins = F.insertion_curve(A.Logits(model), x, sal.map, 0, steps=None)
    assert ins.prob[0] == pytest.approx(0.5) and ins.prob[1] > 0.98
    assert ins.auc > F.insertion_curve(A.Logits(model), x, worst, 0, steps=None).auc


def test_curve_steps_and_fractions(x):
    d = F.deletion_curve(A.Logits(OnePixel()), x, np.random.rand(8, 8), 0, steps=8)
    assert len(d.fraction) == 9 and d.fraction[0] == 0 and d.fraction[-1] == 1
    assert 0 <= d.auc <= 1


def test_faithfulness_table_on_a_tiny_cnn():
    torch.manual_seed(0)
    model = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    xx = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    methods = A.available(model)                                         # every method in the table
    attrs = A.attribute_all(model, xx, 0, methods)
    rows = F.faithfulness(model, xx, 0, attrs, steps=8)
    assert [r.method for r in rows] == methods
    for r in rows:
        assert np.isfinite([r.infidelity, r.sensitivity, r.deletion_auc, r.insertion_auc]).all()
        assert r.infidelity >= 0 and r.sensitivity >= 0
    table = F.table(rows)
    assert len(table) == len(methods) and "deletion AUC (lower better)" in table[0]
    assert F.infidelity_score(model, xx, attrs["Saliency"].attr, 0, seed=4) == \
        F.infidelity_score(model, xx, attrs["Saliency"].attr, 0, seed=4)
