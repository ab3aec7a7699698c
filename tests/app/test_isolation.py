"""Isolation between browser sessions (issue 9), through the Train page as two people use it.

One session's runs, jobs and settings never show in another's; a run saved on purpose is the one
thing both see. Run names typed into the page cannot leave the runs folder, and nothing typed
into the page can overwrite or delete the shipped weights/. Training uses a scripted trainer
around a tiny real model (instant), since what is tested is the bookkeeping, not the learning.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from streamlit.testing.v1 import AppTest

from karp_models.train.jobs import get_manager
from karp_models.train.runs import Prepared, delete_run
from karp_models.train.trainer import Trainer
from karp_models.ui.selection import KEY as IMAGE_KEY

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    n: int = 4


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.n, config.n)


class StepTask:
    """The Task protocol with no maths: ten samples a step and a fixed evaluation."""

    unit, items_per_epoch, eval_split = "samples", 100, "test"

    def items_per_batch(self, batch_size):
        return 10

    def batch(self, split, batch_size, generator, device=None, augment=True):
        return torch.ones(1, 4)

    def training_step(self, model, batch, ctx):
        return model.fc(batch).pow(2).mean()

    def evaluate(self, model, device=None, split="test", max_batches=None, batch_size=None):
        return {"loss": 1.0, "accuracy": 0.5}

    def meta(self):
        return {"classes": list("abcdefghij")}


def builder(spec):
    return Prepared(trainer=Trainer(Tiny(), StepTask(), spec.config),
                    data=SimpleNamespace(source="test", classes=tuple("abcdefghij")))


def digest() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(WEIGHTS.glob("*.safetensors"))}


@pytest.fixture(scope="module")
def shipped():
    before = digest()
    yield
    assert digest() == before, "a shipped weights file changed"


@pytest.fixture
def runs(tmp_path, monkeypatch, shipped):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("KARP_TEACHER_PASSWORD", raising=False)
    monkeypatch.setattr(get_manager(), "builder", builder)
    yield tmp_path / "runs"
    for j in get_manager().jobs():
        if j.active:
            get_manager().stop(j.job_id, wait=True)


def train_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()      # through the navigation: its page links need it
    assert not at.exception, [e.value for e in at.exception]
    return at


def finished_run(at: AppTest) -> str:
    """Start a run on this page and wait for it; its job id."""
    at.number_input(key="train_steps").set_value(20)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (job,) = get_manager().jobs(at.session_state["train_session_id"])
    assert get_manager().wait(job.job_id, timeout=10).state == "done"
    at.run()
    return job.job_id


def save_as(at: AppTest, name: str) -> None:
    at.text_input(key="train_save_name").set_value(name)
    next(b for b in at.button if "Save run" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_runs_jobs_and_settings_stay_in_their_session(runs):
    alice, bob = train_page(), train_page()
    alice.select_slider(key="train_lr").set_value(1e-2)
    alice.text_input(key="train_label").set_value("alice's run")
    jid = finished_run(alice)
    bob.run()
    assert alice.session_state["train_session_id"] != bob.session_state["train_session_id"]
    assert [j.job_id for j in get_manager().jobs(alice.session_state["train_session_id"])] == [jid]
    assert get_manager().jobs(bob.session_state["train_session_id"]) == []
    assert any("No runs yet" in i.value for i in bob.info)  # Bob's page shows none of Alice's
    assert not any("alice" in str(s.options) for s in bob.selectbox)
    assert bob.select_slider(key="train_lr").value != 1e-2
    assert bob.text_input(key="train_label").value == ""
    # the image a person chose or uploaded lives in their session only
    alice.session_state[IMAGE_KEY] = "alice's upload"
    bob.run()
    assert IMAGE_KEY not in bob.session_state


def test_a_run_saved_on_purpose_is_shared(runs):
    alice, bob = train_page(), train_page()
    finished_run(alice)
    save_as(alice, "alice-demo")
    assert (runs / "alice-demo.safetensors").is_file()
    bob.run()
    assert any("alice-demo" in m.value for m in bob.markdown)  # in Bob's "Saved runs"


HOSTILE = ["../../weights/fast-fashion-mnist", str(WEIGHTS / "gpt-shakespeare"), "/etc/passwd",
           "..\\..\\weights\\x", "．．／．．／weights／lstm-names", "runs/../../x", "~/.bashrc",
           "a/b/c", "CON", ".hidden"]


def test_run_names_cannot_escape_the_runs_folder(runs):
    at = train_page()
    finished_run(at)
    for name in HOSTILE:
        save_as(at, name)
    files = [p for p in runs.rglob("*") if p.is_file()]
    assert len(files) == len(HOSTILE) and all(p.parent == runs for p in files), files
    assert not (WEIGHTS / "x.safetensors").exists()


def test_weights_cannot_be_overwritten_or_deleted_from_the_page(runs, monkeypatch):
    at = train_page()
    finished_run(at)
    runs.mkdir(exist_ok=True)
    os.symlink(WEIGHTS / "fast-fashion-mnist.safetensors",
               runs / "fast-fashion-mnist.safetensors")
    save_as(at, "fast-fashion-mnist")  # through a symlink planted in the runs folder
    assert any("leave the runs folder" in e.value or "exists" in e.value for e in at.error)
    assert not any(b.key == "train_delete_fast-fashion-mnist" for b in at.button)  # not listed
    with pytest.raises(ValueError):
        delete_run("fast-fashion-mnist")  # what the page's Delete calls: refused for a symlink
    with pytest.raises(ValueError):
        delete_run("../weights/fast-fashion-mnist")

    monkeypatch.setenv("KARP_RUNS", str(WEIGHTS))  # a runs folder set to weights/ itself
    save_as(at, "overwrite-me")
    assert any("must be outside" in e.value for e in at.error)
    monkeypatch.setenv("KARP_RUNS", str(WEIGHTS / "sub" / ".."))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("must be outside" in e.value for e in at.error)  # the Saved runs list says so
    # and the `shipped` fixture checks every file in weights/ byte for byte afterwards


def test_the_pages_write_files_only_through_the_runs_folder():
    """A guard for later pages: the UI writes and deletes files only through JobManager.save and
    delete_run (both confined to the runs folder). A new writer makes this fail, to be checked."""
    import re

    writes = re.compile(r"write_bytes|write_text|open\([^)]*['\"][wax]b?['\"]|save_checkpoint|"
                        r"\.unlink\(|os\.remove|shutil\.(move|copy|rmtree)|np\.save|torch\.save")
    found = []
    for f in sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "karp_models/ui").rglob("*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if writes.search(line):
                found.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == [], found
