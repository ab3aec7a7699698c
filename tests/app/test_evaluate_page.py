"""AppTest: the Evaluate page with the shipped fast CNN on the real Fashion-MNIST test set (run
once per module): metrics, the confusion matrix and a cell's images, the gallery, calibration,
the PCA projector and the two-model comparison."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from tests.app.test_pages import open_page

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "weights" / "fast-fashion-mnist.safetensors").exists(),
                                reason="shipped weights missing")


@pytest.fixture(scope="module")
def at():
    return open_page("evaluate.py", timeout=240)


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _arr(v) -> np.ndarray:
    """A plotly array from the figure JSON: a list, or plotly's typed form {dtype, bdata, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(n) for n in str(v.get("shape", len(a))).split(",")])
    return np.asarray(v)


def _view(at, name):
    at.segmented_control(key="evaluate_view").set_value(name).run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]


def test_metrics_and_confusion_matrix(at):
    assert at.title[0].value == "Evaluate a model"
    labels = {m.label: m.value for m in at.metric}
    acc = float(labels["Test accuracy"].rstrip("%"))
    assert 93.0 < acc < 95.0                       # the shipped model's measured 93.98%
    assert labels["Mistakes of 10,000"] == "602"       # short values: they fit a projector's column
    heat = [t for c in _charts(at) for t in c["data"] if t["type"] == "heatmap"]
    assert len(heat) == 1 and _arr(heat[0]["z"]).shape == (10, 10)
    # the default cell is the largest confusion; choosing another shows its images, most confident first
    at.selectbox(key="evaluate_cell_true").set_value(0).run()
    at.selectbox(key="evaluate_cell_pred").set_value(6).run()
    assert not at.exception
    assert any("T-shirt/top predicted as **Shirt**" in m.value for m in at.markdown)
    assert len(at.get("image")) == 8                 # the first page of the cell
    assert at.button(key=[b.key for b in at.button if b.key.startswith("evaluate_cell_0_6_explain_")][0])
    table = at.dataframe[0].value
    assert list(table["class"])[:2] == ["T-shirt/top", "Trouser"] and table["recall"].between(0, 1).all()
    at.toggle(key="evaluate_cm_norm").set_value(True).run()
    heat = [t for c in _charts(at) for t in c["data"] if t["type"] == "heatmap"][0]
    assert np.allclose(_arr(heat["z"]).sum(1), 1)


def test_gallery_calibration_projector_compare(at):
    _view(at, "Mistakes")
    keys = [b.key for b in at.button if b.key.startswith("evaluate_gallery_None_None_explain_")]
    assert len(keys) == 12                         # one page of the most confident mistakes
    _view(at, "Calibration")
    assert any(m.label == "Expected calibration error" for m in at.metric)
    _view(at, "Projector")                         # PCA of the first 2,000 test images
    scatter = [t for c in _charts(at) for t in c["data"] if t["type"] in ("scatter", "scattergl")]
    assert len(scatter) == 10 and sum(len(_arr(t["x"])) for t in scatter) == 2000
    assert any(b.key == "evaluate_tsne_go" for b in at.button) is False
    _view(at, "Compare two models")
    assert any("they disagree" in m.label for m in at.metric)
    assert any("Where they disagree" in m.value for m in at.markdown)


def test_gallery_button_opens_the_image_in_explain():
    at = open_page("evaluate.py", timeout=240)
    _view(at, "Mistakes")
    first = [b.key for b in at.button if b.key.startswith("evaluate_gallery_None_None_explain_")][0]
    at.button(key=first).click().run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Explain a prediction"         # pages/explain.py
    index = first.rsplit('_', 1)[1]
    assert at.session_state["karp_image"].source == f"test image #{index}"
    assert at.radio(key="explain_source").value == "shared"     # Explain shows that image...
    assert any(m.value.startswith(f"**test image #{index}**") for m in at.markdown)
    assert at.selectbox(key="explain_model").value.label == "fast-fashion-mnist"  # ...with that model


def test_look_inside_opens_the_image_in_predict_with_the_evaluated_model():
    at = open_page("evaluate.py", timeout=240)
    box = at.selectbox(key="evaluate_model")
    box.set_value(next(c for c in box.options if c == "classic-fashion-mnist")).run(timeout=240)
    _view(at, "Mistakes")
    first = [b.key for b in at.button if b.key.startswith("evaluate_gallery_None_None_inside_")][0]
    at.button(key=first).click().run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Predict and look inside"
    assert at.selectbox(key="predict_model").value.label == "classic-fashion-mnist"
    assert at.number_input(key="predict_test_index").value == int(first.rsplit('_', 1)[1])


def test_accuracy_under_attack_on_request(at):
    """Issue 22: clean and robust accuracy under PGD at the stated epsilon and steps; the normal
    fast CNN keeps almost nothing at epsilon 0.1."""
    _view(at, "Under attack")
    assert not any(m.label == "Robust accuracy" for m in at.metric)       # only on request
    at.selectbox(key="evaluate_robust_items").set_value(250)
    at.selectbox(key="evaluate_robust_steps").set_value(10)
    at.button(key="evaluate_robust_run").click().run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    m = {x.label: x.value for x in at.metric}
    assert float(m["Clean accuracy"].rstrip("%")) > 85 and float(m["Robust accuracy"].rstrip("%")) < 10
    assert any("L-inf ε = 0.1" in c.value and "10 steps" in c.value and "250 test images" in c.value
               for c in at.caption)
