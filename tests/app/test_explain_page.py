"""AppTest: the Explain page on the shipped fast CNN: attributions for a test image, the shared
image from Predict, a confident mistake, the sanity check and faithfulness on their buttons with
one summary per method from both, maps that cannot be judged (a white upload, a class with no
evidence), and the adversarial tab's epsilon slider."""
import numpy as np
import pytest
import torch

from karp_models import data
from karp_models.introspect import attribution as A
from karp_models.ui.selection import KEY as IMAGE_KEY
from karp_models.ui.selection import ImageInput
from karp_models.ui.selection import test_image as make_test_image
from tests.app.test_pages import open_page

FEW = ["Saliency", "Grad-CAM"]


@pytest.fixture(scope="module")
def at():
    return open_page("explain.py")


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def test_attributions_for_a_test_image(at):
    _ok(at)
    assert at.title[0].value == "Explain a prediction"
    assert at.radio(key="explain_source").value == "test"
    assert any("test image #0" in m.value and "✓ right" in m.value for m in at.markdown)
    methods = at.multiselect(key="explain_methods_fast").value
    assert {"Saliency", "Integrated Gradients", "Grad-CAM", "Occlusion"} <= set(methods)
    assert "Attention rollout" not in methods
    summary = at.table[0].value
    assert set(methods) == set(summary.index)
    assert float(summary.loc["Integrated Gradients", "convergence delta"]) < 0.1
    assert summary.loc["Saliency", "convergence delta"] == "–"
    for m in methods:                               # a delta exactly where the table's defaults ask Captum for one
        asked = A.default_kwargs(m, torch.zeros(1, 1, 28, 28)).get("return_convergence_delta", False)
        assert (summary.loc[m, "convergence delta"] != "–") == asked, m
    labels = [b.label for b in at.get("download_button")]
    assert any("PNG" in lbl for lbl in labels) and any("CSV" in lbl for lbl in labels)


def test_shared_image_and_a_confident_mistake(at):
    ds = data.load("fashion-mnist")
    at.session_state[IMAGE_KEY] = make_test_image(ds, 7)
    at.run()
    _ok(at)
    assert at.radio(key="explain_source").options[0].startswith("The image from Predict")
    at.radio(key="explain_source").set_value("shared").run()
    _ok(at)
    assert any("test image #7" in m.value for m in at.markdown)
    at.radio(key="explain_source").set_value("mistake").run()
    _ok(at)
    assert any("✗ wrong" in m.value for m in at.markdown)
    assert any("Mistake 1 of" in c.value and "taken for" in c.value for c in at.caption)


def _boxes(at):
    """The alerts' words without markdown's bold (a leading emoji becomes the alert's icon)."""
    return [e.value.replace("**", "") for e in (*at.success, *at.warning, *at.error, *at.info)]


def _summaries(at):
    return [m.value for m in at.markdown if m.value.startswith("- **")]


def test_sanity_check_and_faithfulness_on_their_buttons(at):
    at.multiselect(key="explain_methods_fast").set_value(FEW).run()
    assert not _summaries(at) and any("Run the sanity check and the faithfulness" in c.value for c in at.caption)
    at.button(key="explain_sanity_run").click().run()
    _ok(at)
    for m in FEW:                                                    # one verdict each, in words
        said = [v for v in _boxes(at) if v.startswith(m)]
        assert len(said) == 1 and ("passes" in said[0] or "fails" in said[0] or "in part" in said[0]
                                   or "cannot be judged" in said[0]), m
    final = at.table[-1].value                                       # every similarity, |map| first
    assert list(final.index) == FEW and list(final.columns)[:4] == ["verdict", "Spearman |map|", "SSIM |map|",
                                                                    "HOG |map|"]
    at.button(key="explain_faith_run").click().run()
    _ok(at)
    table = at.dataframe[-1].value
    assert list(table.index) == FEW and "deletion AUC ↓" in table.columns and "insertion AUC ↑" in table.columns
    summaries = _summaries(at)                                       # under both tabs
    assert len(summaries) == 2 * len(FEW) and all(any(f"**{m}**" in s for s in summaries) for m in FEW)


def test_a_white_upload_is_cannot_judge_not_a_traceback(at):
    blank = ImageInput.from_array(np.zeros((1, 28, 28), np.float32), dataset="fashion-mnist",
                                  source="upload: white.png")        # white, inverted by preprocessing
    at.session_state[IMAGE_KEY] = blank
    at.multiselect(key="explain_methods_fast").set_value(["Saliency", "Integrated Gradients", "Occlusion"])
    at.radio(key="explain_source").set_value("shared").run()
    _ok(at)
    assert any("**Integrated Gradients**" in w.value and "zero everywhere" in w.value for w in at.warning)
    at.button(key="explain_sanity_run").click().run()
    _ok(at)                                                          # was: ValueError, zero-size array
    cannot = [b for b in _boxes(at) if "cannot be judged" in b]
    assert any(c.startswith("Integrated Gradients cannot be judged") for c in cannot)
    assert any(c.startswith("Occlusion cannot be judged") for c in cannot)
    assert not any("Integrated Gradients passes" in b for b in _boxes(at))
    at.button(key="explain_faith_run").click().run()
    _ok(at)
    best = next(c.value for c in at.caption if "Green: the best" in c.value)
    assert "deletion AUC: no best" in best and "insertion AUC: no best" in best   # exact ties: no winner
    assert any("baseline itself" in i.value for i in at.info)
    at.toggle(key="explain_adv_on").set_value(True).run()
    _ok(at)
    at.toggle(key="explain_adv_on").set_value(False).run()


def test_a_class_with_no_evidence_cannot_pass_the_sanity_check(at):
    at.radio(key="explain_source").set_value("test").run()
    at.number_input(key="explain_test_index").set_value(4).run()
    at.multiselect(key="explain_methods_fast").set_value(FEW).run()
    target = next(s for s in at.selectbox if s.label == "Class to explain")
    target.set_value(7).run()                                        # Sneaker, for a shirt
    _ok(at)
    assert any("**Grad-CAM** for Sneaker" in w.value for w in at.warning)
    at.button(key="explain_sanity_run").click().run()
    _ok(at)
    assert not any("Grad-CAM passes" in b for b in _boxes(at))       # was a green box, rho 0.00
    assert any(i.value.startswith("**Grad-CAM cannot be judged**") and i.icon == ":material/help:" for i in at.info)


def test_adversarial_slider(at):
    at.slider(key="explain_adv_eps").set_value(0.2).run()
    assert not at.metric  # nothing is computed until the attack is switched on
    at.toggle(key="explain_adv_on").set_value(True).run()
    _ok(at)
    assert len(at.metric) >= 3
    assert any("Fooled" in e.value for e in at.error) or any("Not fooled" in s.value for s in at.success)


def test_vit_gets_attention_rollout_beside_the_gradient_methods(at):
    box = at.selectbox(key="explain_model")
    vit = next(o for o in box.options if o.startswith("vit-fashion-mnist"))
    at.radio(key="explain_source").set_value("test").run()
    at.selectbox(key="explain_model").set_value(vit).run()
    _ok(at)
    methods = at.multiselect(key="explain_methods_vit").value
    assert "Attention rollout" in methods and "Integrated Gradients" in methods
    summary = at.table[0].value
    assert "Attention rollout" in set(summary.index)
    assert "last block's patch tokens" in summary.loc["Grad-CAM", "what it computes"]
    assert summary.loc["Grad-CAM", "can it be judged?"] == "yes"


def test_normal_vs_robust_side_by_side_with_the_share_on_the_object():
    """Issue 22: the same image explained by the normal and the robust fast CNN, and the share of
    saliency on the object over 200 test images, higher for the robust model."""
    from tests.app.test_links import opened

    at = opened("explain.py", explain_model="fast-fashion-mnist", explain_source="A test image",
                explain_test_index="0", explain_tab="Normal vs robust")
    _ok(at)
    assert at.selectbox(key="explain_robust_other").value.label == "fast-robust-fashion-mnist"
    m = {x.label: x.value for x in at.metric}
    normal = float(m["Saliency on the object: normal"].rstrip("%"))
    robust = float(m["Saliency on the object: robust"].rstrip("%"))
    assert robust > normal + 10
    assert any("of the robust model's" in x.value for x in at.markdown)
