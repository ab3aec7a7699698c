"""Teacher mode (issue 9) on the Train page: without a password nothing is asked; with one (from
the environment or Streamlit secrets) training, deleting saved runs and the job limit wait for it,
per browser session, and a wrong password unlocks nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from karp_models.train.jobs import get_manager
from karp_models.ui import teacher

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "weights" / "lstm-names.safetensors"  # the smallest shipped file


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv(teacher.ENV, raising=False)
    monkeypatch.setattr(teacher, "WRONG_DELAY_S", 0.0)
    (tmp_path / "runs").mkdir()
    shutil.copy(SHIPPED, tmp_path / "runs" / "demo.safetensors")  # a saved run to delete
    limit = get_manager().limit
    yield tmp_path / "runs"
    get_manager().set_limit(limit)


def page(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    at.run()
    at.switch_page("pages/train.py").run()      # through the navigation: its page links need it
    assert not at.exception, [e.value for e in at.exception]
    return at


def has(at: AppTest, kind: str, key: str) -> bool:
    return any(w.key == key for w in at.get(kind))


def locked(at: AppTest) -> bool:
    return (at.button(key="train_start").disabled
            and has(at, "text_input", "train_teacher_password")
            and not has(at, "number_input", "train_job_limit")
            and not has(at, "button", "train_delete_demo")
            and at.button(key="train_continue_demo").disabled)


def unlocked(at: AppTest, teacher_mode: bool = True) -> bool:
    """Free to train and delete; the job limit is changeable in teacher mode, absent without it."""
    return (not at.button(key="train_start").disabled
            and not has(at, "text_input", "train_teacher_password")
            and has(at, "number_input", "train_job_limit") == teacher_mode
            and has(at, "button", "train_delete_demo")
            and not at.button(key="train_continue_demo").disabled)


def test_a_single_user_without_a_password_is_never_asked():
    at = page()
    assert unlocked(at, teacher_mode=False)                # no one may change the shared job limit
    assert not [t for t in at.text_input if t.key and "teacher" in t.key]
    assert not any("Teacher mode" in c.value for c in at.caption)


def test_env_password_guards_training_deleting_and_the_limit(monkeypatch, _env):
    monkeypatch.setenv(teacher.ENV, "chalk")
    at = page()
    assert locked(at)
    assert any("Teacher mode is on" in m.value for m in at.markdown)

    at.text_input(key="train_teacher_password").set_value("guess")
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert any("not the teacher's password" in e.value for e in at.error)
    assert locked(at)

    at.text_input(key="train_teacher_password").set_value("chalk")
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert unlocked(at)

    at.number_input(key="train_job_limit").set_value(2)
    at.button(key="train_limit_apply").click().run()
    assert get_manager().limit == 2

    at.button(key="train_delete_demo").click().run()
    assert not (_env / "demo.safetensors").exists()
    assert SHIPPED.is_file()

    at.button(key="teacher_lock").click().run()
    assert at.button(key="train_start").disabled
    assert has(at, "text_input", "train_teacher_password")


def test_secrets_password_and_sessions_unlock_separately():
    teacher_tab = page({teacher.SECRET: "s3cret"})
    student_tab = page({teacher.SECRET: "s3cret"})
    assert locked(teacher_tab) and locked(student_tab)
    teacher_tab.text_input(key="train_teacher_password").set_value("s3cret")
    next(b for b in teacher_tab.button if b.label == "Unlock").click().run()
    assert unlocked(teacher_tab)
    student_tab.run()
    assert locked(student_tab)  # the teacher's unlocking is theirs alone


def test_a_locked_session_cannot_start_even_if_the_click_arrives(monkeypatch):
    monkeypatch.setenv(teacher.ENV, "chalk")
    at = page()
    before = len(get_manager().jobs())
    start = at.button(key="train_start")
    start.proto.disabled = False  # a forged click on the disabled button (a browser cannot)
    start.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(get_manager().jobs()) == before
