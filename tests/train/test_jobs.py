"""JobManager: start, stop, resume, queue order, errors, sessions, reaper, threads, run names.

Mechanics use the real Trainer on a task with no maths (milliseconds per step); the end-to-end
tests train real tiny models on the small bundled datasets (digits, names) for a few dozen steps.
Every test of the manager runs against both backends (conftest.make_manager: worker threads in
this process, and Ray tasks on a local cluster with the queue in a Ray actor).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from karp_models.train import previews, runs
from karp_models.train.jobs import JobManager
from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.checkpoints import load_trainer_state
from karp_models.train.trainer import TrainConfig, Trainer

# --- a task with no maths, run by the real Trainer (milliseconds per step)


class FakeTask:
    """The Task protocol without the maths: each training step sleeps `delay` seconds (and raises
    at step `fail_at`); a whole-split evaluation sleeps full_eval_s, the interval subset does not."""

    unit = "samples"
    items_per_epoch = 100
    eval_split = "test"
    full_eval_s = 0.0

    def __init__(self, delay: float = 0.002, fail_at: int | None = None, full_eval_s: float = 0.0):
        self.delay, self.fail_at, self.steps = delay, fail_at, 0
        self.full_eval_s = full_eval_s

    def items_per_batch(self, batch_size):
        return 1

    def batch(self, split, batch_size, generator, device=None, augment=True):
        return torch.ones(1, 2)

    def training_step(self, model, batch, ctx):
        time.sleep(self.delay)
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("boom at step 3")
        return model(batch).pow(2).mean()

    def evaluate(self, model, device=None, split="test", max_batches=None, batch_size=None):
        if max_batches is None:
            time.sleep(self.full_eval_s)
        return {"loss": 1.0, "accuracy": 0.5}


def fake_builder(spec: RunSpec) -> Prepared:
    """Honours resume_from, as runs.build_run does (a job on disk continues from its autosave)."""
    o = spec.overrides
    task = FakeTask(o.get("delay", 0.002), o.get("fail_at"), o.get("full_eval_s", 0.0))
    trainer = Trainer(nn.Linear(2, 2), task, spec.config)
    if spec.resume_from:
        load_trainer_state(spec.resume_from, trainer)
    return Prepared(trainer=trainer, data=None)


def spec(steps: int = 10**6, **o) -> RunSpec:
    return RunSpec(model="fake", dataset="fake", config=TrainConfig(steps=steps), overrides=o,
                   device="cpu", preview_every=10**9)


def karp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("karp-")]


def until(cond, timeout: float = 5.0, every: float = 0.01) -> float:
    """Poll cond() until true; seconds it took. Fails the test on timeout."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        time.sleep(every)
    return time.monotonic() - t0


@pytest.fixture
def mgr(make_manager, tmp_path):
    m = make_manager(builder=fake_builder, runs_dir=tmp_path / "runs", set_threads=False)
    yield m
    m.shutdown(timeout=10)
    assert not karp_threads(), karp_threads()


# --- start, stop, resume


def test_job_runs_to_done_and_leaves_no_thread(mgr):
    jid = mgr.submit("s1", spec(steps=40))
    st = mgr.wait(jid, timeout=10)
    assert st.state == "done" and st.progress == 1.0 and st.records[-1].final
    assert [r.step for r in st.records] == [10, 20, 30, 40]
    until(lambda: not karp_threads())  # the worker is joined, the reaper has left


def test_stop_then_resume_continues_from_memory(mgr):
    jid = mgr.submit("s1", spec())
    until(lambda: mgr.status(jid).step >= 20)
    mgr.stop(jid, wait=True)
    st = mgr.status(jid)
    assert st.state == "stopped" and not st.stop_requested
    assert not [t for t in karp_threads() if t.name.startswith("karp-job-")]
    stopped_at = st.step
    mgr.resume(jid)
    until(lambda: mgr.status(jid).step >= stopped_at + 20)
    st = mgr.status(jid)
    steps = [r.step for r in st.records]
    assert steps == sorted(steps) and steps[0] == 10  # one continuous curve, not a restart
    assert len(set(steps)) == len(steps) and stopped_at in steps
    with pytest.raises(ValueError):
        mgr.resume(jid)  # only a stopped job can be resumed
    mgr.stop(jid, wait=True)


def test_stop_is_prompt_even_when_a_full_evaluation_is_slow(mgr):
    jid = mgr.submit("s1", spec(full_eval_s=3.0))
    until(lambda: mgr.status(jid).step >= 10)
    t0 = time.monotonic()
    mgr.stop(jid, wait=True)
    assert time.monotonic() - t0 < 1.0 and mgr.status(jid).state == "stopped"


def test_progress_eta_and_throughput(mgr):
    jid = mgr.submit("s1", spec(steps=400, delay=0.005))
    until(lambda: mgr.status(jid).step >= 100)
    st = mgr.status(jid)
    assert 0.2 <= st.progress < 1 and st.unit == "samples"
    assert 50 < st.throughput <= 1 / 0.005  # one sample per step of at least 5 ms
    assert st.eta_s is not None and 0 < st.eta_s < 10
    mgr.stop(jid, wait=True)


def test_worker_sets_the_app_thread_count_on_its_own_thread(make_manager, monkeypatch, tmp_path):
    monkeypatch.setenv("KARP_THREADS", "1")
    seen = tmp_path / "threads.txt"

    def builder(spec):
        with open(seen, "a") as f:  # inside the worker (a thread here, a Ray task there)
            f.write(f"{torch.get_num_threads()}\n")
        return fake_builder(spec)

    main_before = torch.get_num_threads()
    torch.set_num_threads(2)  # the worker must not inherit this
    m = make_manager(builder=builder, runs_dir=tmp_path / "runs")  # set_threads=True, as in the app
    try:
        assert m.wait(m.submit("s", spec(steps=5)), timeout=30).state == "done"
    finally:
        m.shutdown()
        torch.set_num_threads(main_before)  # the default for later threads, as it was
    assert seen.read_text().split() == ["1"]


# --- queue


def test_queue_is_fifo_with_positions(mgr):
    a = mgr.submit("s1", spec())
    b = mgr.submit("s2", spec())
    c = mgr.submit("s1", spec())
    until(lambda: mgr.status(a).state == "running")
    assert (mgr.status(b).queue_position, mgr.status(c).queue_position) == (1, 2)
    assert mgr.status(a).queue_position is None
    mgr.stop(a)
    until(lambda: mgr.status(b).state == "running")
    assert mgr.status(c).state == "queued" and mgr.status(c).queue_position == 1
    mgr.stop(c)  # leaves the queue at once, never started
    assert mgr.status(c).state == "stopped" and mgr.status(c).step == 0
    mgr.stop(b, wait=True)
    assert [j.state for j in mgr.jobs()] == ["stopped"] * 3


def test_limit_per_device_lets_two_run(make_manager, tmp_path):
    m = make_manager(builder=fake_builder, limit=2, set_threads=False)
    try:
        a, b, c = (m.submit(s, spec()) for s in ("s1", "s2", "s3"))
        until(lambda: m.status(a).state == m.status(b).state == "running")
        assert m.status(c).state == "queued"
    finally:
        m.shutdown()
    assert not karp_threads()


# --- errors


def test_error_shows_within_two_seconds_and_manager_keeps_working(mgr):
    t0 = time.monotonic()
    bad = mgr.submit("s1", spec(fail_at=3))
    until(lambda: mgr.status(bad).state == "error", timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    st = mgr.status(bad)
    assert "RuntimeError: boom at step 3" in st.error and "Traceback" in st.error_detail
    good = mgr.submit("s1", spec(steps=20))
    assert mgr.wait(good, timeout=5).state == "done"


def test_builder_error_is_reported(make_manager, tmp_path):
    def broken(spec):
        raise FileNotFoundError("dataset 'x' is missing: run python -m karp_models download x")

    m = make_manager(builder=broken, set_threads=False)
    try:
        jid = m.submit("s1", spec())
        assert m.wait(jid, timeout=2).state == "error"
        assert "download x" in m.status(jid).error
    finally:
        m.shutdown()


# --- sessions and the reaper


def test_sessions_see_only_their_jobs(mgr):
    a = mgr.submit("alice", spec(steps=10))
    b = mgr.submit("bob", spec(steps=10))
    mgr.wait(a, 5), mgr.wait(b, 5)
    assert [j.job_id for j in mgr.jobs("alice")] == [a]
    assert [j.job_id for j in mgr.jobs("bob")] == [b]


def test_reaper_stops_abandoned_sessions_only(make_manager, tmp_path):
    m = make_manager(builder=fake_builder, grace_s=0.3, limit=2, set_threads=False)
    try:
        kept = m.submit("open-tab", spec())
        gone = m.submit("closed-tab", spec())
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.2:  # the open tab's page polls; the other is silent
            m.heartbeat("open-tab")
            time.sleep(0.05)
        assert m.status(kept).state == "running"
        # on Ray a stop also writes its autosave from the worker: slow on a loaded 2-core machine
        until(lambda: not [j for j in m.jobs() if j.session_id == "closed-tab" and j.active],
              timeout=30.0 if make_manager.backend == "ray" else 5.0)
        left = [j for j in m.jobs() if j.session_id == "closed-tab"]
        if make_manager.backend == "ray":  # it autosaves at every stop: kept on disk when it trained
            assert all((j.state, j.paused, j.on_disk) == ("stopped", True, True) for j in left)
        else:
            assert not left  # stopped and forgotten (no autosave)
            with pytest.raises(KeyError):
                m.status(gone)
    finally:
        m.shutdown()
    assert not karp_threads()


def test_liveness_callback_keeps_a_tab_on_another_page(make_manager, tmp_path):
    m = make_manager(builder=fake_builder, grace_s=0.2, set_threads=False)
    try:
        m.set_liveness(lambda sid: sid == "connected")
        jid = m.submit("connected", spec())
        time.sleep(0.6)  # no heartbeat, but the tab is still connected
        assert m.status(jid).state == "running"
    finally:
        m.shutdown()


def test_no_thread_left_after_shutdown_with_queue(make_manager, tmp_path):
    m = make_manager(builder=fake_builder, set_threads=False)
    ids = [m.submit("s", spec()) for _ in range(3)]
    until(lambda: m.status(ids[0]).state == "running")
    m.shutdown()
    assert [m.status(i).state for i in ids] == ["stopped"] * 3
    assert not karp_threads()


# --- run names


@pytest.mark.parametrize("name,stem", [
    ("../../etc/passwd", "etc-passwd"),
    ("/etc/passwd", "etc-passwd"),
    ("..\\..\\windows\\x", "windows-x"),
    ("a/../../b", "a-b"),
    ("．．／．．／x", "x"),  # full-width dots and slash: NFKC turns them into ../
    ("lr 3e-3 (Übung)", "lr-3e-3-Übung"),
    ("日本語のラン", "日本語のラン"),
    ("run\x00.safetensors", "run"),
    ("my run.safetensors", "my-run"),
])
def test_run_names_stay_in_the_runs_folder(tmp_path, name, stem):
    root = tmp_path / "runs"
    p = runs.run_path(name, root)
    assert p.parent == root.resolve() and p.name == f"{stem}.safetensors"


@pytest.mark.parametrize("name", ["", "   ", "..", "...", "/", "../..", "\x00", "💥"])
def test_unusable_run_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError):
        runs.run_path(name, tmp_path)


def test_runs_folder_is_never_weights(monkeypatch):
    from karp_models.train.runs import WEIGHTS_DIR

    with pytest.raises(ValueError):
        runs.runs_dir(WEIGHTS_DIR / "sub")
    monkeypatch.setenv("KARP_RUNS", "/tmp/karp-runs-test")
    assert runs.runs_dir() == Path("/tmp/karp-runs-test").resolve()


def test_save_refuses_running_jobs(mgr):
    jid = mgr.submit("s1", spec())
    until(lambda: mgr.status(jid).state == "running")
    with pytest.raises(ValueError):
        mgr.save(jid, "early")
    mgr.stop(jid, wait=True)


# --- real models, tiny runs


def test_image_run_previews_saves_like_the_cli_and_continues(make_manager, tmp_path):
    from karp_models.cli import main as cli
    from karp_models.train.checkpoints import load_checkpoint, read_metadata

    m = make_manager(runs_dir=tmp_path / "runs", set_threads=False)
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(steps=30, batch_size=32, eval_every=10, eval_batches=2)
        jid = m.submit("s1", RunSpec(model="fast", dataset="digits", config=cfg, preview_every=10))
        st = m.wait(jid, timeout=30)
        assert st.state == "done", st.error
        p = st.preview
        assert isinstance(p, previews.Predictions) and p.images.shape == (16, 1, 8, 8) and len(p.preds) == 16
        assert p.step == 30 and 0 <= p.correct <= 16 and p.classes[0] == "0"
        assert [r.step for r in st.records if r.val_loss is not None] == [10, 20, 30]

        path = m.save(jid, "../digits run")
        assert path == (tmp_path / "runs" / "digits-run.safetensors").resolve()
        with pytest.raises(FileExistsError):
            m.save(jid, "digits run")
        ref = tmp_path / "cli.safetensors"  # the reference: what `python -m karp_models train` writes
        assert cli(["train", "--model", "fast", "--dataset", "digits", "--steps", "2",
                    "--batch-size", "32", "--out", str(ref)]) == 0
        ours, theirs = read_metadata(path), read_metadata(ref)
        # the app also keeps filter snapshots, the time-lapse's steps and the owner's tag (what
        # its quota counts)
        assert set(ours) - {"filter_evolution", "timelapse", "owner"} == set(theirs) and ours["owner"] == "s1"
        assert ours["timelapse"] == {"steps": [0, 10, 20, 30], "stride": 10}
        assert set(ours["train"]) == set(theirs["train"])
        assert set(ours["metrics"]) == {"test_loss", "test_accuracy"}
        assert ours["train"]["steps"] == 30 and "karp_models train --model fast" in ours["train"]["command"]
        assert load_checkpoint(path).model_name == "fast"  # every view can open it
        assert [r[0] for r in runs.list_runs(tmp_path / "runs")] == [path]

        more = m.submit("s1", runs.spec_from_run(path, steps=40))  # continue from the file
        st2 = m.wait(more, timeout=30)
        assert st2.state == "done", st2.error
        steps = [r.step for r in st2.records]
        assert steps[0] == 10 and steps[-1] == 40 and 30 in steps  # history kept, then onwards
    finally:
        m.shutdown()
        torch.set_num_threads(threads)  # the CLI set its own count (process-wide)
    assert not karp_threads()


def test_text_run_shows_a_fresh_sample(make_manager, tmp_path):
    m = make_manager(set_threads=False)
    try:
        cfg = TrainConfig(steps=40, batch_size=16, eval_every=20, eval_batches=1)
        jid = m.submit("s1", RunSpec(model="gpt", dataset="names", preset="nano", config=cfg,
                                     preview_every=20))
        seen = set()
        t0 = time.monotonic()
        while m.status(jid).active and time.monotonic() - t0 < 30:
            s = m.status(jid).preview
            if isinstance(s, previews.TextSample):
                seen.add(s.step)
            time.sleep(0.02)
        st = m.wait(jid, timeout=30)
        assert st.state == "done", st.error
        assert st.unit == "tokens" and isinstance(st.preview, previews.TextSample)
        assert st.preview.step == 40 and len(st.preview.text) == previews.SAMPLE_CHARS
        assert set(st.preview.text) <= set("abcdefghijklmnopqrstuvwxyz\n")
        assert len(seen | {40}) >= 2  # a new sample during training, not only at the end
    finally:
        m.shutdown()


@pytest.mark.parametrize("name", ["名" * 100, "\U00020000" * 80, "é" * 200])
def test_long_names_in_any_script_fit_the_file_system(tmp_path, name):
    """QA: 100 CJK characters made '[Errno 36] File name too long' (the limit counted
    characters; file systems count bytes)."""
    p = runs.run_path(name, tmp_path)
    assert len(p.name.encode()) + len(".x.12345678.tmp") < 255
    p.write_bytes(b"x")                                    # the name really works on this disk
    assert p.read_bytes() == b"x"
