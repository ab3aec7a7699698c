"""Cascading randomisation (Adebayo et al. 2018): top layer first, really new weights, the same
ones for the same seed, and the original model untouched; layers named for people; verdicts
decided by every similarity on |map| and the signed map, and "cannot judge" for a map that ranks
nothing."""
import numpy as np
import pytest
import torch

from karp_models.introspect import sanity as S
from karp_models.introspect.attribution import available
from karp_models.introspect.similarity import Similarity
from karp_models.models.attention import ViT, ViTConfig


def _state(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_steps_go_from_the_top_down_with_norms_beside_their_convs(cnn):
    steps = S.randomisation_steps(cnn)
    assert steps[0].modules == ("classifier.fc",)
    assert steps[1].modules == ("features.stage3.conv2", "features.stage3.bn2")
    assert steps[-1].modules == ("features.stem.conv", "features.stem.bn")
    assert len(steps) == 8


def test_layers_have_readable_names_from_the_output_to_the_input(cnn):
    assert [s.name for s in S.randomisation_steps(cnn)] == [
        "fc (output)", "stage3 conv2", "stage3 conv1", "stage2 conv2", "stage2 conv1", "stage1 conv2",
        "stage1 conv1", "stem conv (input)"]
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=16, patch_size=4, n_embd=16, n_layer=2, n_head=2))
    steps = S.randomisation_steps(vit)
    assert [s.name for s in steps] == ["head (output)", "final norm", "block 2", "block 1",
                                       "patch embedding (input)"]
    assert steps[-1].params == ("cls_token", "pos_embed")              # randomised with the embedding


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
    assert res.names == ["original"] + [s.name for s in S.randomisation_steps(cnn)]
    assert list(res.correlation) == methods
    for k in methods:
        assert len(res.similarity[k]) == n and len(res.maps[k]) == n and res.maps[k][0].shape == (16, 16)
        if res.similarity[k][0].values:                                 # the original against itself
            assert all(v == pytest.approx(1.0) for v in res.similarity[k][0].values.values())
        assert res.correlation[k] == res.series(k, "Spearman |map|")
        v = res.verdicts[k]
        assert k in v.text and v.status in (S.PASSES, S.PARTLY_DEPENDS, S.FAILS, S.CANNOT)
        assert v.final == res.similarity[k][-1].values
    again = S.cascading_randomisation(cnn, x, 1, methods, seed=3)
    assert again.correlation.keys() == res.correlation.keys()
    assert all(np.array_equal(again.correlation[k], res.correlation[k], equal_nan=True) for k in methods)
    assert all(torch.equal(original[k], v) for k, v in cnn.state_dict().items())
    rows = res.records()
    assert {r["method"] for r in rows} == set(methods) and {r["step"] for r in rows} == set(res.steps)


def test_a_blank_image_is_judged_cannot_judge_and_never_raises(cnn):
    x = torch.zeros(1, 1, 16, 16)                                       # an all-white upload, inverted
    res = S.cascading_randomisation(cnn, x, 0, available(cnn))
    for k in ("Integrated Gradients", "DeepLift"):                     # input = baseline: nothing to attribute
        v = res.verdicts[k]
        assert v.status == S.CANNOT and not v.flagged and "zero everywhere" in v.reason
        assert "passes" not in v.text and v.drivers == ()
        assert all(np.isnan(res.correlation[k]))                       # no number at any step
        assert {r["cannot judge because"] for r in res.records() if r["method"] == k} == {
            "its map for the trained model is zero everywhere, so no pixel counts more than another"}
    assert all(np.isnan(o) for o in res.on_object["Saliency"])          # no non-black pixel to look at

# ---------------------------------------------------------------------------- the verdict rule


def _sim(**values):
    return Similarity({k.replace("_abs", " |map|").replace("_signed", " signed"): v for k, v in values.items()})


def test_fails_only_when_every_similarity_stays_high():
    v = S.verdict("Edges", _sim(Spearman_abs=0.9, SSIM_abs=0.7, HOG_abs=0.55))
    assert v.status == S.FAILS and v.flagged and v.drivers == ("HOG |map|",)   # the least alike decides
    assert "do not trust" in v.text and "HOG of |map|, is 0.55" in v.text


def test_passes_only_when_every_similarity_falls():
    v = S.verdict("Saliency", _sim(Spearman_abs=0.1, SSIM_abs=-0.2, HOG_abs=0.29))
    assert v.status == S.PASSES and not v.flagged and v.drivers == ("HOG |map|",)  # the most alike decides
    assert "passes" in v.text and "HOG of |map|, is only 0.29" in v.text


def test_a_sign_that_flips_while_the_outline_stays_is_partly():
    v = S.verdict("Occlusion", _sim(Spearman_abs=0.9, SSIM_abs=0.34, HOG_abs=0.37, Spearman_signed=-0.27,
                                    SSIM_signed=0.29, HOG_signed=0.41), on_object=0.11)
    assert v.status == S.PARTLY_DEPENDS and not v.flagged
    assert v.drivers == ("Spearman |map|", "Spearman signed")
    assert "Spearman of |map| 0.90" in v.text and "Spearman of the signed map -0.27" in v.text
    assert "background" in v.text and "0.11" in v.text                  # the likeness is the black outline
    assert "Still there" in v.text and "Lost: the ranking of the pixels from most for" in v.text
    band = S.verdict("Grad-CAM", _sim(SSIM_abs=0.76, HOG_abs=0.49, Spearman_abs=0.54))   # nothing below 0.3
    assert band.status == S.PARTLY_DEPENDS and "Only partly kept: the edges" in band.text
    one_high = S.verdict("Occlusion", _sim(Spearman_abs=0.9, Spearman_signed=0.6))
    assert one_high.status == S.FAILS                                   # no measure changed: fails


def test_a_map_without_values_cannot_be_judged():
    v = S.verdict("Grad-CAM", Similarity({}, "its map for the trained model is zero everywhere"))
    assert v.status == S.CANNOT and not v.flagged and v.reason in v.text and "passes" not in v.text


def test_a_blank_map_at_the_last_step_does_not_hide_the_steps_before():
    """QA: Guided Grad-CAM stayed alike (a fail) until the last step's map went blank; Grad-CAM
    changed at once (a pass) and then went blank. The last judgeable step decides; a map that
    vanishes for every randomised model passes; a blank original cannot be judged."""
    blank = Similarity({}, "its map with the layers down to stem random is zero everywhere")
    alike = _sim(Spearman_abs=0.95, SSIM_abs=0.9, HOG_abs=0.92)
    unlike = _sim(Spearman_abs=0.05, SSIM_abs=0.1, HOG_abs=0.2)
    orig = _sim(Spearman_abs=1.0, SSIM_abs=1.0, HOG_abs=1.0)
    names = ["original", "fc (output)", "conv2", "stem (input)"]
    hid_fail = S.decide("Guided Grad-CAM", [orig, alike, alike, blank], [1.0] * 4, names)
    assert hid_fail.status == S.FAILS and "conv2" in hid_fail.text and "zero everywhere" in hid_fail.text
    hid_pass = S.decide("Grad-CAM", [orig, unlike, blank, blank], [1.0] * 4, names)
    assert hid_pass.status == S.PASSES and "fc (output)" in hid_pass.text
    vanished = S.decide("Grad-CAM", [orig, blank, blank, blank], [1.0] * 4, names)
    assert vanished.status == S.PASSES and "zero everywhere" in vanished.text
    nothing = S.decide("Grad-CAM", [Similarity({}, "its map for the trained model is zero everywhere")] * 4,
                       [float("nan")] * 4, names)
    assert nothing.status == S.CANNOT
    assert S.decide("Saliency", [orig, alike, alike, unlike], [1.0] * 4, names).text == \
        S.verdict("Saliency", unlike, 1.0).text                     # the last step, when it can be judged
