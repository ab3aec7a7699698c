"""AppTest: the Explain page on the shipped fast CNN: attributions for a test image, the shared
image from Predict, a confident mistake, the sanity check and faithfulness on their buttons, and
the adversarial tab's epsilon slider."""
import pytest
import torch

from karp_models import data
from karp_models.introspect import attribution as A
from karp_models.ui.selection import KEY as IMAGE_KEY
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


def test_sanity_check_and_faithfulness_on_their_buttons(at):
    at.multiselect(key="explain_methods_fast").set_value(FEW).run()
    at.button(key="explain_sanity_run").click().run()
    _ok(at)
    verdicts = [e.value for e in (*at.success, *at.warning, *at.error)]
    for m in FEW:
        assert any(v.count(m) and ("passes" in v or "trust" in v or "partly" in v) for v in verdicts), m
    at.button(key="explain_faith_run").click().run()
    _ok(at)
    table = at.dataframe[-1].value
    assert list(table.index) == FEW and "deletion AUC (lower better)" in table.columns


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
    assert "Attention rollout" in set(at.table[0].value.index)
