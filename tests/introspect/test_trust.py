"""trust: one summary per method from the sanity verdict and the deletion / insertion places,
for every combination that reads differently."""
import numpy as np

from karp_models.introspect import faithfulness as F
from karp_models.introspect import sanity as S
from karp_models.introspect import trust as T
from karp_models.introspect.similarity import Similarity


def _rows(deletion: dict, insertion: dict | None = None):
    insertion = insertion or {m: 1 - d for m, d in deletion.items()}
    return [F.FaithRow(m, 0.1, 0.1, d, insertion[m], None, None, 0.0,
                       None if np.isfinite(d) else "the map is zero everywhere") for m, d in deletion.items()]


def _verdict(method, **values):
    return S.verdict(method, Similarity({k.replace("_abs", " |map|").replace("_signed", " signed"): v
                                         for k, v in values.items()}))


PASS = dict(Spearman_abs=0.1, SSIM_abs=0.0)
FAIL = dict(Spearman_abs=0.9, SSIM_abs=0.8)
SIGN = dict(Spearman_abs=0.9, Spearman_signed=-0.27)


def test_standing_from_the_places_and_ties():
    rows = _rows({"A": 0.1, "B": 0.2, "C": 0.3, "D": np.nan})
    ranks = [F.rank(rows, "deletion_auc"), F.rank(rows, "insertion_auc")]
    assert T.standing("A", ranks) == (T.HIGH, "1st of 3 by deletion, 1st of 3 by insertion")
    assert T.standing("B", ranks)[0] == T.MIDDLE and T.standing("C", ranks)[0] == T.LOW
    assert T.standing("D", ranks) == (T.NONE, "")
    tied = _rows({"A": 0.5, "B": 0.5})
    assert T.standing("A", [F.rank(tied, "deletion_auc"), F.rank(tied, "insertion_auc")]) == (T.TIED, "")
    one = _rows({"A": 0.5})
    assert T.standing("A", [F.rank(one, "deletion_auc")]) == (T.ALONE, "1st of 1 by deletion")
    part = _rows({"A": 0.1, "B": 0.1, "C": 0.3})
    assert T.standing("B", [F.rank(part, "deletion_auc")]) == (T.HIGH, "tied 1st of 3 by deletion")


def test_a_faithful_map_whose_sign_is_the_models_reads_as_trust_the_colours():
    verdicts = {"Occlusion": _verdict("Occlusion", **SIGN), "Saliency": _verdict("Saliency", **PASS),
                "Edges": _verdict("Edges", **FAIL)}
    rows = _rows({"Occlusion": 0.03, "Saliency": 0.2, "Edges": 0.1})
    out = T.summarise(verdicts, rows, "Ankle boot")
    assert list(out) == ["Occlusion", "Saliency", "Edges"]
    occ = out["Occlusion"]
    assert (occ.sanity, occ.faithfulness) == (S.PARTLY_DEPENDS, T.HIGH)
    assert occ.text.startswith("Read its colours") and "for or against Ankle boot" in occ.text
    assert "which is why it scores well there (1st of 3 by deletion, 1st of 3 by insertion)" in occ.text
    assert out["Saliency"].text.startswith("Its map depends on what the model learned, but")  # passes, last
    assert "do not contradict" not in out["Edges"].text and out["Edges"].faithfulness == T.MIDDLE


def test_a_faithful_map_that_fails_the_sanity_check_is_explained_not_contradicted():
    out = T.summarise({"Edges": _verdict("Edges", **FAIL), "Saliency": _verdict("Saliency", **PASS)},
                      _rows({"Edges": 0.1, "Saliency": 0.3}), "Bag")
    assert out["Edges"].text.startswith("The two checks do not contradict each other")
    assert out["Saliency"].text.startswith("Its map depends") and "not the ones" in out["Saliency"].text
    out = T.summarise({"Saliency": _verdict("Saliency", **PASS), "Edges": _verdict("Edges", **FAIL)},
                      _rows({"Saliency": 0.1, "Edges": 0.3}), "Bag")
    assert out["Saliency"].text.startswith("Trust it here") and out["Edges"].text.startswith("Do not use it")


def test_cannot_judge_and_ties_say_so():
    blank = S.verdict("Grad-CAM", Similarity({}, "its map for the trained model is zero everywhere"))
    out = T.summarise({"Grad-CAM": blank, "Saliency": _verdict("Saliency", **PASS),
                       "IG": _verdict("IG", **PASS)},
                      _rows({"Grad-CAM": np.nan, "Saliency": 0.336, "IG": 0.336}), "Sneaker")
    assert out["Grad-CAM"].text == "Cannot judge: its map for the trained model is zero everywhere."
    assert out["Saliency"].faithfulness == T.TIED and "cannot tell the methods apart" in out["Saliency"].text
    assert "Saliency passes" in out["Saliency"].text                  # the sanity check still speaks
    missing = T.summarise({"Saliency": _verdict("Saliency", **PASS)}, [], "Sneaker")
    assert missing == {}
