"""AppTest: the time-lapse on the text pages (GPT attention, RNN neurons) for a saved run with
snapshots (the shipped model as the last step, a disturbed copy as the first), for shipped weights
(none, and why), and a run of this browser still in memory (the live path, ui.timelapse)."""
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

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
TEXT = 'ROMEO.\nBut soft! what light through "yonder" window breaks?\n"It is the east," he said.\n'


def _run_with_timelapse(folder: Path, shipped: str) -> tuple[Path, list]:
    ck = load_checkpoint(WEIGHTS / shipped)
    early = copy.deepcopy(ck.model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in early.parameters():
            p.add_(0.5 * p.std().nan_to_num(0.1) * torch.randn_like(p))
    state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    snaps = [(0, state(early)), (400, state(ck.model))]
    tensors, meta = checkpoint_parts(ck.model, model_name=ck.model_name,
                                     meta={**ck.meta, tl.META_KEY: {"steps": [0, 400], "stride": 400}})
    tensors.update(tl.tensors(snaps)[0])
    return write_checkpoint(folder / f"lapse-{ck.model_name}.safetensors", tensors, meta), snaps


def _open_run(page: str, key: str, tmp_path, monkeypatch, shipped: str):
    pytest.importorskip("safetensors")
    if not (WEIGHTS / shipped).exists():
        pytest.skip("shipped weights not restored")
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    path, snaps = _run_with_timelapse(tmp_path, shipped)
    from karp_models.ui.models import model_choices
    model_choices.clear()
    at = open_page(page)
    box = at.selectbox(key=key)
    box.select_index(next(i for i, o in enumerate(box.options) if "lapse" in str(o))).run()
    assert not at.exception, [e.value for e in at.exception]
    return at, snaps


def test_shipped_text_models_have_no_time_lapse_and_say_why():
    at = open_page("text_attention.py")
    assert any("No time-lapse for this model" in i.value for i in at.info)


def test_attention_time_lapse_shows_each_snapshots_heads(tmp_path, monkeypatch):
    from karp_models.introspect import text as tx

    at, snaps = _open_run("text_attention.py", "text_attention_model", tmp_path, monkeypatch, "gpt-shakespeare.safetensors")
    at.text_area(key="text_attention_text_shakespeare").set_value(TEXT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Step 400** (snapshot 2 of 2") for m in at.markdown)
    slider = at.select_slider(key=next(k for k in at.session_state if str(k).startswith("text_attention_tl_step_")))
    slider.set_value(0).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Step 0** (snapshot 1 of 2") and "before the first training step" in m.value for m in at.markdown)
    # the model view at step 0 is the attention of the step-0 weights, loaded directly
    ck = load_checkpoint(WEIGHTS / "gpt-shakespeare.safetensors")
    ck.model.load_state_dict(snaps[0][1])
    vocab = list(ck.meta["vocab"])
    window = [vocab.index(c) for c in TEXT[:32]]
    want = tx.attention(ck.model.eval(), window)
    L, H = want.shape[:2]
    views = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    grids = [[plotly_array(d["z"]).astype(float) for d in v["data"]] for v in views if len(v["data"]) == L * H]

    def same(z) -> bool:
        return all(np.allclose(np.nan_to_num(z[k]), want[k // H, k % H], atol=1e-4) for k in range(L * H))

    assert len(grids) == 2 and same(grids[1]) and not same(grids[0])   # model view tab: the final weights


def test_rnn_time_lapse_follows_the_chosen_cell(tmp_path, monkeypatch):
    at, _snaps = _open_run("rnn_neurons.py", "rnn_neurons_model", tmp_path, monkeypatch, "lstm-shakespeare.safetensors")
    at.text_area(key="rnn_neurons_text_shakespeare").set_value(TEXT).run()
    assert not at.exception, [e.value for e in at.exception]
    cell = at.number_input(key="rnn_neurons_cell").value
    assert any(h.value == f"Time-lapse: cell {cell} during training" for h in at.header)
    assert any(m.value.startswith("**Step 400** (snapshot 2 of 2") for m in at.markdown)
    corr = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "follows" in c.proto.spec)
    ys = [d["y"] for d in corr["data"]]
    assert len(ys[0]) == 2 and abs(ys[0][1]) <= ys[1][1] + 1e-9        # the chosen cell, the best cell
    assert any("coloured by cell" in c.value for c in at.caption)


def test_a_run_of_this_browser_is_replayed_from_memory(tmp_path, monkeypatch):
    """The live path: a job's snapshots so far and its model config, with no file saved."""
    from karp_models.introspect import text as tx
    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import TrainConfig
    from karp_models.ui import timelapse as tlv
    from karp_models.ui import training

    m = JobManager(runs_dir=tmp_path, set_threads=False)
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(steps=20, batch_size=8, eval_every=0, eval_batches=1)
        jid = m.submit("me", RunSpec(model="gpt", dataset="names", preset="nano", config=cfg, preview_every=10))
        assert m.wait(jid, timeout=60).state == "done"
        monkeypatch.setattr(training, "manager", lambda: m)
        monkeypatch.setattr(training, "session_id", lambda: "me")
        assert tlv.live_lapses(("lstm",), "names") == [] and tlv.live_lapses(("gpt",), "shakespeare") == []
        (lapse,) = tlv.live_lapses(("gpt",), "names")
        assert lapse.steps == [0, 10, 20] and not lapse.live and lapse.loss_at(20) is not None
        ids = (1, 2, 3, 4)
        got = tlv.frame(lapse, 1, ("attention", ids), lambda mm: tx.attention(mm, ids))
        direct = copy.deepcopy(m._jobs[jid].prepared.trainer.model).cpu().eval()
        direct.load_state_dict(dict(m.status(jid).timelapse)[10])
        np.testing.assert_array_equal(got, tx.attention(direct, ids))
    finally:
        m.shutdown()
        torch.set_num_threads(threads)


def test_a_damaged_time_lapse_is_said_and_the_page_goes_on(tmp_path, monkeypatch):
    ck = load_checkpoint(WEIGHTS / "gpt-shakespeare.safetensors")
    tensors, meta = checkpoint_parts(ck.model, model_name=ck.model_name,
                                     meta={**ck.meta, tl.META_KEY: {"steps": [0]}})
    tensors["timelapse/zero/w"] = torch.zeros(2)                    # a step that is not a number
    write_checkpoint(tmp_path / "lapse-forged.safetensors", tensors, meta)
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    from karp_models.ui.models import model_choices
    model_choices.clear()
    at = open_page("text_attention.py")
    box = at.selectbox(key="text_attention_model")
    box.select_index(next(i for i, o in enumerate(box.options) if "forged" in str(o))).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("time-lapse cannot be read" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 2                          # the other tabs still draw


def test_the_run_chosen_to_replay_stays_chosen_when_it_finishes(tmp_path, monkeypatch):
    """QA: a run picked while '(Running)' lost the choice when it became '(Done)' (its label held
    its state); the label is the run's alone, and a run still training is the first choice."""
    import dataclasses

    from streamlit.testing.v1 import AppTest

    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import TrainConfig
    from karp_models.ui import timelapse as tlv
    from karp_models.ui import training

    m = JobManager(runs_dir=tmp_path, set_threads=False)
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(steps=20, batch_size=8, eval_every=0, eval_batches=1)
        jid = m.submit("me", RunSpec(model="gpt", dataset="names", preset="nano", config=cfg, preview_every=10))
        done = m.wait(jid, timeout=60)
        running = dataclasses.replace(done, state="running")
        monkeypatch.setattr(training, "session_id", lambda: "me")
        labels = {}
        for name, status in (("running", running), ("done", done)):
            monkeypatch.setattr(training, "manager", lambda s=status: type("M", (), {"jobs": lambda self, sid: [s]})())
            (lapse,) = tlv.live_lapses(("gpt",), "names")
            labels[name] = (lapse.label, lapse.live)
        assert labels["running"][0] == labels["done"][0] and labels["running"][1] and not labels["done"][1]
    finally:
        m.shutdown()
        torch.set_num_threads(threads)

    def script():
        import streamlit as st

        from karp_models.ui import timelapse as tlv
        live = st.session_state.get("live", True)
        lapses = [tlv.Lapse(("saved",), "saved run: a", [], {}, None),
                  tlv.Lapse(("live", 1), "this session: #2", [], {}, None, live=live)]
        st.write(tlv.pick("t", lapses).label)

    at = AppTest.from_function(script).run()
    assert at.selectbox(key="t_run").value == "this session: #2"        # the run still training first
    at.session_state["live"] = False
    at.run()
    assert at.selectbox(key="t_run").value == "this session: #2" and not at.exception
