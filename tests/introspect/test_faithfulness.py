"""Deletion and insertion on a model that only looks at one pixel; Captum's infidelity and
max-sensitivity on a tiny CNN, one table row per method."""
import numpy as np
import pytest
import torch
from torch import nn

from karp_models.introspect import attribution as A
from karp_models.introspect import faithfulness as F
from karp_models.introspect.similarity import judgeable
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
        if r.reason is not None:                                         # e.g. Grad-CAM's ReLU left nothing
            assert r.reason == f"the map {judgeable(attrs[r.method].map)}"
            continue
        assert judgeable(attrs[r.method].map) is None
        assert np.isfinite([r.infidelity, r.sensitivity, r.deletion_auc, r.insertion_auc]).all()
        assert r.infidelity >= 0 and r.sensitivity >= 0
    table = F.table(rows)
    assert len(table) == len(methods) and "deletion AUC (lower better)" in table[0]
    assert F.infidelity_score(model, xx, attrs["Saliency"].attr, 0, seed=4) == \
        F.infidelity_score(model, xx, attrs["Saliency"].attr, 0, seed=4)

# ---------------------------------------------------------------------------- degenerate maps and ranking


def _row(method, deletion, insertion=0.5, reason=None):
    return F.FaithRow(method, 0.1, 0.1, deletion, insertion, None, None, 0.0, reason)


def test_a_map_that_ranks_nothing_gets_no_scores_and_its_reason(x):
    model = OnePixel()
    blank = A.Attribution("Blank", np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), np.float32), None, 0.0)
    rows = F.faithfulness(model, x, 0, {"Saliency": A.attribute(model, x, 0, "Saliency"), "Blank": blank},
                          steps=8, sensitivity=False)
    ok, bad = rows
    assert ok.reason is None and np.isfinite([ok.deletion_auc, ok.insertion_auc, ok.infidelity]).all()
    assert bad.reason == "the map is zero everywhere, so no pixel counts more than another"
    assert np.isnan([bad.infidelity, bad.deletion_auc, bad.insertion_auc]).all() and bad.deletion is None
    r = F.rank(rows, "deletion_auc")
    assert r.best is None and r.places == {"Saliency": 1}                       # one score: nothing to beat
    assert "only Saliency has a score" in r.reason and "Blank: cannot judge" in r.reason
    assert F.table(rows)[1]["cannot judge because"] == bad.reason


def test_rank_names_a_best_only_when_one_method_is_ahead():
    rows = [_row("A", 0.30, 0.7), _row("B", 0.10, 0.9), _row("C", 0.20, 0.9), _row("D", np.nan, np.nan, reason="flat")]
    d = F.rank(rows, "deletion_auc")
    assert d.best == "B" and d.reason is None and d.places == {"B": 1, "C": 2, "A": 3}
    i = F.rank(rows, "insertion_auc")                                            # higher is better here
    assert i.best is None and i.reason == "B and C tie at 0.9" and i.places == {"B": 1, "C": 1, "A": 3}
    same = F.rank([_row("A", 0.336), _row("B", 0.336 + 1e-12), _row("C", 0.336)], "deletion_auc")
    assert same.best is None and same.reason.startswith("all 3 methods tie at 0.336")
    near = F.rank([_row("Occlusion", 0.03205), _row("DeepLift", 0.03215), _row("IG", 0.0378)], "deletion_auc")
    assert near.best is None and near.reason == "Occlusion and DeepLift tie at 0.0321"   # 3 decimals: equal
    assert near.places == {"Occlusion": 1, "DeepLift": 1, "IG": 3}
    assert F.rank([], "deletion_auc").reason == "no method has a score"


def test_an_image_equal_to_the_baseline_lets_no_method_win():
    torch.manual_seed(0)
    model = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    black = torch.zeros(1, 1, 16, 16)
    assert "baseline itself" in F.baseline_note(black) and F.baseline_note(black + 0.5) is None
    attrs = A.attribute_all(model, black, 0, A.available(model))
    rows = F.faithfulness(model, black, 0, attrs, steps=8, sensitivity=False)
    for col in ("deletion_auc", "insertion_auc"):
        r = F.rank(rows, col)
        assert r.best is None and "tie" in r.reason, col
    for name in ("Integrated Gradients", "DeepLift"):                          # zero maps: cannot judge
        assert next(r for r in rows if r.method == name).reason.startswith("the map is zero everywhere")
