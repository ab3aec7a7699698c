"""AppTest of the browser's work identity (issue 18): a tab opened with the same work id (what a
refresh sends back in the cookie; AppTest has no cookies, so the `?work=` link stands in) finds
the runs and the last upload of that browser; another id finds none; the id leaves the address."""
from __future__ import annotations

import dataclasses
import io
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from streamlit.testing.v1 import AppTest

from karp_models.train import workspace
from karp_models.train.checkpoints import load_trainer_state, read_metadata
from karp_models.train.jobs import JobManager, get_manager
from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("KARP_TEACHER_PASSWORD", raising=False)
    yield tmp_path / "runs"
    for j in get_manager().jobs():
        if j.active:
            get_manager().stop(j.job_id, wait=True)


def tab(page: str, work: str | None = None) -> AppTest:
    """A new tab of the browser that holds `work` (None: a browser never seen before)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if work:
        at.query_params["work"] = work
    at.run()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_reopened_tab_finds_its_running_run_and_no_one_else_does(runs):
    work = workspace.new_work_id()
    first = tab("train.py", work)
    assert "work" not in first.query_params                  # the id leaves the address at once
    first.selectbox(key="train_dataset").set_value("digits")
    first.number_input(key="train_steps").set_value(50_000)
    first.button(key="train_start").click().run()
    owner = workspace.owner_tag(work)
    assert first.session_state["train_session_id"] == owner
    (job,) = get_manager().jobs(owner)

    again = tab("train.py", work)                            # the same browser, a new tab
    assert again.selectbox(key="train_view").value == job.job_id
    assert get_manager().status(job.job_id).state in ("queued", "running")
    assert again.button(key="train_stop")

    stranger = tab("train.py")
    assert stranger.session_state["train_session_id"] != owner
    assert any("No runs yet" in i.value for i in stranger.info)
    assert not any(b.key == "train_stop" for b in stranger.button)


def test_an_invalid_work_id_is_ignored(runs):
    at = tab("train.py", "../../etc/passwd")
    assert "work" not in at.query_params
    assert workspace.valid_work_id(at.session_state["karp_work_id"])


def _png() -> bytes:
    a = np.full((64, 48, 3), 240, np.uint8)
    a[10:50, 15:35] = (30, 40, 90)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _upload_source(at: AppTest) -> None:
    radio = at.radio(key="predict_source")
    radio.set_value(next(o for o in radio.options if "Upload" in o)).run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_last_upload_comes_back_in_a_new_tab_of_the_same_browser(runs):
    work = workspace.new_work_id()
    first = tab("predict.py", work)
    _upload_source(first)
    first.get("file_uploader")[0].upload("my shirt.png", _png(), "image/png").run()
    assert not first.exception, [e.value for e in first.exception]
    assert workspace.kept_upload(workspace.owner_tag(work)) == ("my-shirt.png", _png())

    again = tab("predict.py", work)
    _upload_source(again)
    assert any("my-shirt.png" in c.value and "uploaded earlier" in c.value for c in again.caption)
    assert again.session_state["karp_image"].source == "upload: my-shirt.png"

    stranger = tab("predict.py")
    _upload_source(stranger)
    assert not any("uploaded earlier" in c.value for c in stranger.caption)

    again.button(key="predict_forget_upload").click().run()   # Forget it: gone from the server
    assert workspace.kept_upload(workspace.owner_tag(work)) is None


# --- after a restart: the owner and the teacher find the interrupted run


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    n: int = 4


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.n, config.n)


class StepTask:
    """The Task protocol with no maths: a few milliseconds a step, a fixed evaluation."""

    unit, items_per_epoch, eval_split = "samples", 100, "test"

    def items_per_batch(self, batch_size):
        return 10

    def batch(self, split, batch_size, generator, device=None, augment=True):
        return torch.rand(1, 4, generator=generator)

    def training_step(self, model, batch, ctx):
        time.sleep(0.003)
        return model.fc(batch).pow(2).mean()

    def evaluate(self, model, device=None, split="test", max_batches=None, batch_size=None):
        return {"loss": 1.0, "accuracy": 0.5}

    def meta(self):
        return {"classes": list("abcdefghij")}


def tiny_builder(spec):
    """Honours resume_from, as runs.build_run does."""
    trainer = Trainer(Tiny(), StepTask(), spec.config)
    if spec.resume_from:
        load_trainer_state(spec.resume_from, trainer)
    return Prepared(trainer=trainer, data=SimpleNamespace(source="test", classes=tuple("abc")))


def interrupted_run(owner: str, runs: Path, scratch: Path) -> str:
    """An autosave written while a run was training, as a server killed then would leave it in
    `runs`; its job id."""
    m = JobManager(builder=tiny_builder, runs_dir=scratch, set_threads=False, autosave_steps=20)
    try:
        jid = m.submit(owner, RunSpec(model="fast", dataset="digits",
                                      config=TrainConfig(steps=10**6), device="cpu"))
        src = workspace.autosave_path(owner, jid, scratch)
        t0 = time.monotonic()
        while not (src.exists() and read_metadata(src)["autosave"]["state"] == "running"):
            assert time.monotonic() - t0 < 20, "no autosave"
            time.sleep(0.01)
        dst = workspace.autosave_path(owner, jid, runs)
        dst.parent.mkdir(parents=True)
        shutil.copy(src, dst)                                  # the file as it was at the kill
    finally:
        m.shutdown()
    return jid


def test_after_a_restart_the_owner_and_the_teacher_find_the_interrupted_run(runs, tmp_path,
                                                                             monkeypatch):
    alice = workspace.new_work_id()
    jid = interrupted_run(workspace.owner_tag(alice), runs, tmp_path / "scratch")
    monkeypatch.setattr(get_manager(), "builder", tiny_builder)
    assert jid in get_manager().recover()                    # what a new server does first
    monkeypatch.setenv("KARP_TEACHER_PASSWORD", "pw")

    bob = tab("train.py")                                    # locked, not the owner: nothing
    assert not any("interrupted" in e.label for e in bob.expander)
    assert not any("Interrupted" in w.value for w in bob.warning)

    teacher = tab("train.py")
    teacher.text_input(key="train_teacher_password").set_value("pw")
    next(b for b in teacher.button if b.label == "Unlock").click().run()
    (panel,) = [e for e in teacher.expander if "1 run of others was interrupted" in e.label]
    assert teacher.button(key=f"train_teacher_resume_{jid}")

    owner = tab("train.py", alice)
    step = get_manager().status(jid).step
    assert owner.selectbox(key="train_view").value == jid
    assert any(f"Interrupted at step {step:,}" in w.value for w in owner.warning)
    owner.button(key="train_resume").click().run()
    assert not owner.exception, [e.value for e in owner.exception]
    t0 = time.monotonic()
    while get_manager().status(jid).step < step + 20:
        assert time.monotonic() - t0 < 20, "the resumed run did not go on"
        time.sleep(0.05)
    st = get_manager().status(jid)
    assert not st.interrupted and st.records[0].step == 10   # the curve from the start, continued
    teacher.run()
    assert not any("interrupted" in e.label for e in teacher.expander)
