"""AppTest: Evaluate's projector replayed over a saved run's snapshots (the shipped Fashion-MNIST CNN
as the last step, a disturbed copy as the first): the same test images at each snapshot, and the
accuracy the page draws is the snapshot's own, measured directly."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models.train import timelapse as tl
from karp_models.train.checkpoints import checkpoint_parts, load_checkpoint, write_checkpoint
from test_evaluate_page import _arr as plotly_array
from test_pages import open_page

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "fast-fashion-mnist.safetensors"
pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="shipped weights not restored")


def test_the_projector_replays_a_run(tmp_path, monkeypatch):
    from karp_models.data import load
    from karp_models.introspect.evaluate import predict_probs

    ck = load_checkpoint(SHIPPED)
    early = copy.deepcopy(ck.model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in early.parameters():
            p.add_(1.0 * p.std().nan_to_num(0.1) * torch.randn_like(p))
    state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    tensors, meta = checkpoint_parts(ck.model, model_name=ck.model_name,
                                     meta={**ck.meta, tl.META_KEY: {"steps": [0, 500], "stride": 500}})
    tensors.update(tl.tensors([(0, state(early)), (500, state(ck.model))])[0])
    write_checkpoint(tmp_path / "lapse.safetensors", tensors, meta)
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    from karp_models.ui.models import model_choices
    model_choices.clear()

    at = open_page("evaluate.py", timeout=240)
    box = at.selectbox(key="evaluate_model")
    box.select_index(next(i for i, o in enumerate(box.options) if "lapse" in str(o))).run(timeout=240)
    at.segmented_control(key="evaluate_view").set_value("Projector").run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value == "The projector during training" for s in at.subheader)
    at.toggle(key="evaluate_tl_on").set_value(True).run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Step 500** (snapshot 2 of 2)") for m in at.markdown)
    curve = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "5-NN" in c.proto.spec)
    acc = [float(v) for v in plotly_array(curve["data"][0]["y"])]
    ds = load("fashion-mnist")
    want = [float((predict_probs(m, ds.test_x[:2000]).argmax(1) == ds.test_y[:2000].numpy()).mean())
            for m in (early, ck.model)]
    np.testing.assert_allclose(acc, want, atol=1e-6)
    assert want[0] < want[1] - 0.2                                     # the disturbed copy is worse
