"""Issue 15's cases on the shipped fast CNN and the real Fashion-MNIST test set: a class with no
evidence (all-zero Grad-CAM), a white upload (blank after preprocessing), an image equal to the
baseline, and Occlusion, which the sanity check and faithfulness used to judge oppositely."""
from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models import data
from karp_models import preprocess as pp
from karp_models.introspect import attribution as A
from karp_models.introspect import faithfulness as F
from karp_models.introspect import sanity as S
from karp_models.introspect import trust as T
from karp_models.train.checkpoints import load_checkpoint

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "fast-fashion-mnist.safetensors"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="shipped weights missing")
SNEAKER = 7


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(WEIGHTS).model.eval()


@pytest.fixture(scope="module")
def ds():
    return data.load("fashion-mnist")


def _image(ds, i):
    return ds.test_x[i:i + 1].float() / 255


def test_a_class_with_no_evidence_cannot_pass(model, ds):
    x = _image(ds, 4)                                                   # a shirt; Sneaker has no evidence
    assert A.attribute(model, x, SNEAKER, "Grad-CAM").map.max() == 0    # Grad-CAM's ReLU leaves nothing
    v = S.cascading_randomisation(model, x, SNEAKER, ["Grad-CAM", "Saliency"]).verdicts
    assert v["Grad-CAM"].status == S.CANNOT and "zero everywhere" in v["Grad-CAM"].text
    assert "passes" not in v["Grad-CAM"].text and v["Saliency"].status != S.CANNOT
    attrs = A.attribute_all(model, x, SNEAKER, ["Grad-CAM", "Saliency", "Occlusion"])
    rows = F.faithfulness(model, x, SNEAKER, attrs, sensitivity=False)
    for col in F.COLUMNS:
        assert "Grad-CAM" not in F.rank(rows, col).places


def test_a_white_upload_never_raises_and_names_what_cannot_be_judged(model):
    x = torch.from_numpy(pp.preprocess(np.full((64, 64, 3), 255, np.uint8), "fashion").x)[None]
    assert not x.any()                                                  # blank after preprocessing
    methods = A.available(model)
    res = S.cascading_randomisation(model, x, 0, methods)              # raised ValueError before
    blank = {k for k, v in res.verdicts.items() if v.status == S.CANNOT}
    assert {"Integrated Gradients", "DeepLift", "Occlusion"} <= blank   # input = baseline: nothing to attribute
    assert all(not v.flagged for k, v in res.verdicts.items() if k in blank)
    rows = F.faithfulness(model, x, 0, A.attribute_all(model, x, 0, methods), sensitivity=False)
    for col in ("deletion_auc", "insertion_auc"):                       # deleting black from black: all tie
        r = F.rank(rows, col)
        assert r.best is None and "tie" in r.reason
    assert F.baseline_note(x) is not None


def test_occlusion_depends_on_the_model_by_its_sign_and_the_two_tabs_agree(model, ds):
    x = _image(ds, 0)
    target = int(model(x)[0].argmax())
    assert target == int(ds.test_y[0])                                  # a correct prediction
    v = S.cascading_randomisation(model, x, target, ["Occlusion"]).verdicts["Occlusion"]
    assert v.status == S.PARTLY_DEPENDS and not v.flagged              # was "do not trust"
    assert v.drivers == ("Spearman |map|", "Spearman signed")
    assert v.final["Spearman |map|"] >= S.STILL_SIMILAR > S.PARTLY > v.final["Spearman signed"]
    assert v.on_object < v.final["Spearman |map|"]                     # the likeness is the black outline
    methods = A.available(model)
    rows = F.faithfulness(model, x, target, A.attribute_all(model, x, target, methods), sensitivity=False)
    ranks = [F.rank(rows, "deletion_auc"), F.rank(rows, "insertion_auc")]
    assert all(r.places["Occlusion"] == 1 for r in ranks)               # first (deletion: tied with DeepLift,
    assert ranks[1].best == "Occlusion"                                 # 0.0321 vs 0.0322: no win)
    summary = T.summarise({"Occlusion": v}, rows, ds.classes[target])["Occlusion"]
    assert summary.faithfulness == T.HIGH and summary.text.startswith("Read its colours")
