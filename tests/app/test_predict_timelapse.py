"""AppTest: Predict's Time-lapse tab on a saved run with snapshots (the shipped Fashion-MNIST CNN
as the final step, a damped copy as the first) and on shipped weights (none, and why)."""
import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models.train import timelapse as tl
from karp_models.train.checkpoints import checkpoint_parts, load_checkpoint, write_checkpoint
from tests.app.test_pages import open_page

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "fast-fashion-mnist.safetensors"
pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="shipped weights not restored")


def _run_with_timelapse(folder: Path) -> Path:
    ck = load_checkpoint(SHIPPED)
    early = copy.deepcopy(ck.model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in early.parameters():
            p.add_(0.5 * p.std().nan_to_num(0.1) * torch.randn_like(p))
    state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    tensors, meta = checkpoint_parts(ck.model, model_name=ck.model_name,
                                     meta={**ck.meta, tl.META_KEY: {"steps": [0, 500]}})
    tensors.update(tl.tensors([(0, state(early)), (500, state(ck.model))])[0])
    return write_checkpoint(folder / "lapse.safetensors", tensors, meta)


def test_shipped_weights_have_no_time_lapse_and_say_why():
    at = open_page("predict.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("No time-lapse for this model" in i.value for i in at.info)


def test_the_slider_replays_the_run_and_its_last_step_is_the_final_model(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    _run_with_timelapse(tmp_path)
    from karp_models.ui.models import model_choices
    model_choices.clear()                                   # listed within its 10 s cache
    at = open_page("predict.py")
    box = at.selectbox(key="predict_model")
    box.select_index(next(i for i, o in enumerate(box.options) if "lapse" in o)).run()
    assert not at.exception, [e.value for e in at.exception]
    top = [re.fullmatch(r"### (.+): ([0-9.]+)%", m.value) for m in at.markdown]
    name, pct = next(t.groups() for t in top if t)                        # '### Shirt: 72.3%'
    at.toggle(key="predict_tl_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.select_slider(key=next(k for k in at.session_state if str(k).startswith("predict_tl_step_")))
    assert slider.value == 1                                               # opens at the last step
    said = next(m.value for m in at.markdown if m.value.startswith("**Step 500**"))
    # the final model's answer, to the page's precision: the same numbers as the prediction above
    assert f"the model says **{name}** ({float(pct) / 100:.0%})" in said
    slider.set_value(0).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Step 0** of 500") for m in at.markdown)
    assert any("Spearman rank correlation" in c.value for c in at.caption)
