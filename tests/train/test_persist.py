"""Nothing a person makes is lost (issue 18): autosaves, recovery after the server process is
killed, quotas, the reaper keeping an absent owner's work on disk, and the sweep.

The kill tests run the training server as a real child process (persist_child.py: a JobManager
training the fast CNN on the bundled digits, autosaving every 20 steps), kill it with SIGKILL in
the middle of the run or in the middle of an autosave write, then recover and resume in this
process and compare with the same run uninterrupted: the loss curve and the weights are
bit-identical. The mechanics tests use the real Trainer on a tiny model (train_helpers.TinyNet)
with a task that has no data to load.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from karp_models.train import checkpoints as ck
from karp_models.train import workspace as ws
from karp_models.train.checkpoints import load_checkpoint, read_trainer_summary
from karp_models.train.jobs import JobManager
from karp_models.train.runs import Prepared, RunSpec, list_runs, read_metadata
from karp_models.train.trainer import TrainConfig, Trainer
from train_helpers import TinyNet, TinyNetConfig, install_fake_registry

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import persist_child  # noqa: E402

STEPS, EVERY = 120, 20


def until(cond, timeout: float = 30.0, every: float = 0.01):
    t0 = time.monotonic()
    while not (out := cond()):
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        time.sleep(every)
    return out


# --- the same run, uninterrupted: the reference


@pytest.fixture(scope="module")
def reference():
    """Records and final weights of the run the child trains, in one go (no autosave)."""
    m = JobManager(set_threads=False)
    try:
        jid = m.submit("ref", persist_child.spec(STEPS))
        st = m.wait(jid, timeout=120)
        assert st.state == "done", st.error
        weights = {k: v.clone() for k, v in m._jobs[jid].prepared.trainer.model.state_dict().items()}
    finally:
        m.shutdown()
    return st.records, weights


def curve(records) -> list[tuple[int, float, float | None]]:
    return [(r.step, r.train_loss, r.val_loss) for r in records]


# --- the server process, killed


class Child:
    """persist_child.py in its own process; its stdout lines as they come."""

    def __init__(self, root: Path, owner: str, hang_at_write: int | None = None):
        args = [sys.executable, str(HERE / "persist_child.py"), str(root), owner, str(STEPS),
                str(EVERY)] + ([str(hang_at_write)] if hang_at_write else [])
        env = {**os.environ, "KARP_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["job"], line
        self.job_id = line[1]

    def wait_line(self, text: str) -> None:
        assert self.proc.stdout.readline().strip() == text

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL


def autosave_step(path: Path) -> int:
    """The step an autosave holds (0 while there is none); a reader never sees half a file."""
    if not path.exists():
        return 0
    return int(read_trainer_summary(path)["step"])


def no_corrupted_file(root: Path) -> list[Path]:
    """Every autosave in the work folder loads; the temporaries a killed write left behind."""
    for p in (root / ws.WORK).rglob("*.safetensors"):
        assert load_checkpoint(p).model_name == "fast"
    return list((root / ws.WORK).rglob("*.tmp"))


def resume_after_restart(root: Path, job_id: str, owner: str, at_step: int, reference) -> None:
    """A new manager (the restarted server) lists the run as interrupted at `at_step`; its owner
    resumes it; it ends exactly as the uninterrupted run."""
    m = JobManager(runs_dir=root, set_threads=False, autosave_steps=EVERY)
    try:
        assert m.recover() == [job_id]
        assert m.jobs("someone-else") == []
        with pytest.raises(KeyError):                       # another browser cannot act on it
            m.resume(job_id, owner="someone-else")
        (st,) = m.jobs(owner)
        assert (st.state, st.interrupted, st.on_disk, st.step) == ("stopped", True, True, at_step)
        assert st.records[-1].step == at_step == st.autosaved_step
        ref_records, ref_weights = reference
        assert curve(st.records) == curve(ref_records)[:len(st.records)]  # the curve so far
        m.resume(job_id, owner=owner)
        done = m.wait(job_id, timeout=120)
        assert done.state == "done", done.error
        assert not done.interrupted and done.records[0].step == EVERY // 2
        assert curve(done.records) == curve(ref_records)             # bit-exact, to the end
        got = m._jobs[job_id].prepared.trainer.model.state_dict()
        assert all(torch.equal(got[k], w) for k, w in ref_weights.items())
    finally:
        m.shutdown()


def test_server_killed_mid_run_resumes_from_the_last_autosave(tmp_path, reference):
    child = Child(tmp_path, "alice")
    path = ws.autosave_path("alice", child.job_id, tmp_path)
    try:
        until(lambda: autosave_step(path) >= 2 * EVERY)
    finally:
        child.kill()
    at = autosave_step(path)
    assert at % EVERY == 0 and 2 * EVERY <= at < STEPS
    no_corrupted_file(tmp_path)
    assert list_runs(tmp_path) == []                     # an autosave is not a saved run
    resume_after_restart(tmp_path, child.job_id, "alice", at, reference)


def test_server_killed_mid_autosave_write_keeps_the_previous_autosave(tmp_path, reference):
    child = Child(tmp_path, "bob", hang_at_write=3)      # autosaves at 20 and 40; the third hangs
    path = ws.autosave_path("bob", child.job_id, tmp_path)
    try:
        child.wait_line("half")
        before = path.read_bytes()
    finally:
        child.kill()
    assert path.read_bytes() == before and autosave_step(path) == 2 * EVERY
    (tmp,) = no_corrupted_file(tmp_path)
    assert 0 < tmp.stat().st_size < len(before) * 0.75   # half of the next one
    resume_after_restart(tmp_path, child.job_id, "bob", 2 * EVERY, reference)
    old = time.time() - 2 * 3600                         # a stale temporary is swept
    os.utime(tmp, (old, old))
    JobManager(runs_dir=tmp_path, set_threads=False, autosave_steps=EVERY).sweep()
    assert not tmp.exists()


# --- mechanics, on a tiny model


class SlowTask:
    """The Task protocol over random 8x8 images, `delay` seconds a step."""

    unit, items_per_epoch, eval_split = "samples", 100, "test"

    def __init__(self, delay: float):
        self.delay = delay

    def items_per_batch(self, batch_size):
        return batch_size

    def batch(self, split, batch_size, generator, device=None, augment=True):
        return (torch.rand(4, 1, 8, 8, generator=generator),
                torch.randint(0, 4, (4,), generator=generator))

    def training_step(self, model, batch, ctx):
        time.sleep(self.delay)
        return model(*batch)[1]

    def evaluate(self, model, device=None, split="test", max_batches=None, batch_size=None):
        return {"loss": 1.0, "accuracy": 0.5}

    def meta(self):
        return {"classes": ["a", "b", "c", "d"]}


def builder(spec: RunSpec) -> Prepared:
    """Honours resume_from, as runs.build_run does."""
    torch.manual_seed(0)
    trainer = Trainer(TinyNet(TinyNetConfig()), SlowTask(spec.overrides.get("delay", 0.002)),
                      spec.config)
    if spec.resume_from:
        ck.load_trainer_state(spec.resume_from, trainer)
    return Prepared(trainer=trainer, data=SimpleNamespace(source="synthetic"))


def spec(steps: int = 10**6, delay: float = 0.002) -> RunSpec:
    return RunSpec(model="tinynet", dataset="quadrants", device="cpu", preview_every=10**9,
                   config=TrainConfig(steps=steps, batch_size=4, eval_every=0),
                   overrides={"delay": delay})


NO_QUOTA = ws.Quota(per_owner=0, total=0, reserve=0)


@pytest.fixture
def mgr(make_manager, tmp_path, monkeypatch):
    """A manager of each backend (conftest.make_manager), autosaving every 10 steps."""
    install_fake_registry(monkeypatch)
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                     quota=NO_QUOTA)
    yield m
    m.shutdown(timeout=10)


@pytest.fixture
def mgr_here(tmp_path, monkeypatch):
    """An in-process manager, for a test that patches this process (the disk's fsync)."""
    install_fake_registry(monkeypatch)
    m = JobManager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   quota=NO_QUOTA)
    yield m
    m.shutdown(timeout=10)


def field(m, jid, name):
    """A field of the job as its queue keeps it (in this process, or in the Ray queue actor)."""
    return getattr(m._jobs[jid], name) if isinstance(m, JobManager) else m.field(jid, name)


def test_autosaves_come_at_the_interval_at_a_record_and_at_the_stop(make_manager, tmp_path, monkeypatch):
    install_fake_registry(monkeypatch)
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_s=0.2,
                   quota=ws.Quota(per_owner=0, total=0, reserve=0))
    try:
        jid = m.submit("s", spec(delay=0.005))
        seen = {}

        def four_autosaves() -> bool:
            st = m.status(jid)
            if st.autosaved_at is not None:
                seen[st.autosaved_at] = st.autosaved_step
            return len(seen) >= 4

        until(four_autosaves)
        m.stop(jid, wait=True)
        times = sorted(seen)
        assert all(b - a >= 0.2 for a, b in zip(times, times[1:])), times  # never more often
        assert all(step % 10 == 0 for step in seen.values())   # at a record: a consistent state
        st = m.status(jid)
        assert st.autosaved_step == st.step >= max(seen.values())  # the stop wrote a last one
    finally:
        m.shutdown()


def test_disk_full_during_an_autosave_keeps_the_previous_one(mgr_here, monkeypatch):
    """In-process only: it patches this process's fsync (a Ray task autosaves on its node)."""
    mgr = mgr_here
    jid = mgr.submit("s", spec())
    path = mgr._jobs[jid].autosave
    until(lambda: autosave_step(path) >= 10)
    real_fsync = os.fsync

    def full(fd):  # the data went to the temporary file; the disk ran out flushing it
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ck.os, "fsync", full)
    until(lambda: mgr.status(jid).autosave_problem)
    before, at = path.read_bytes(), autosave_step(path)
    until(lambda: mgr.status(jid).step >= at + 30)        # training goes on meanwhile
    st = mgr.status(jid)
    assert st.state == "running" and "disk is full" in st.autosave_problem
    assert "unchanged" in st.autosave_problem
    assert path.read_bytes() == before and load_checkpoint(path).model_name == "tinynet"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
    assert st.autosaved_step == at
    monkeypatch.setattr(ck.os, "fsync", real_fsync)       # space again
    until(lambda: mgr.status(jid).autosave_problem is None)
    assert autosave_step(path) > at
    mgr.stop(jid, wait=True)


def test_an_absent_owners_run_is_stopped_kept_on_disk_and_resumed(make_manager, tmp_path, monkeypatch):
    install_fake_registry(monkeypatch)
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   grace_s=0.3, limit=2, quota=ws.Quota(per_owner=0, total=0, reserve=0))
    try:
        kept, gone = m.submit("open-tab", spec()), m.submit("closed-lid", spec())
        # both pages poll until the second run has autosaved (a first build in a fresh process can
        # take longer than the grace: a run stopped before any step is forgotten, nothing to keep)
        until(lambda: (m.heartbeat("open-tab"), m.heartbeat("closed-lid"),
                       (m.status(gone).autosaved_step or 0) >= 10)[-1], timeout=60, every=0.05)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:                # then only one owner's page polls
            m.heartbeat("open-tab")
            time.sleep(0.05)
        assert m.status(kept).state == "running"
        st = m.status(gone)
        assert (st.state, st.paused, st.on_disk) == ("stopped", True, True)
        assert field(m, gone, "prepared") is None             # its model left memory
        assert st.autosaved_step == st.step > 0
        m.heartbeat("closed-lid")                         # the lid opens: the page finds it
        assert [j.job_id for j in m.jobs("closed-lid")] == [gone]
        m.resume(gone, owner="closed-lid")
        until(lambda: m.heartbeat("closed-lid") or m.status(gone).step >= st.step + 20)
        steps = [r.step for r in m.status(gone).records if not r.final]
        assert steps == sorted(set(steps)) and steps[0] == 10  # one curve, continued
        assert not m.status(gone).paused
    finally:
        m.shutdown()


def test_quotas_refuse_with_a_clear_message_and_count_each_owner(make_manager, tmp_path, monkeypatch):
    install_fake_registry(monkeypatch)
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   quota=ws.Quota(per_owner=0, total=0, reserve=0))
    try:
        a = m.submit("alice", spec(steps=20))
        assert m.wait(a, 10).state == "done"
        p = m.save(a, "alice-run")
        assert read_metadata(p)["owner"] == "alice"
        size = p.stat().st_size
        u = ws.usage("alice", tmp_path)
        assert (u.saved, u.autosaves) == (size, 0)        # a saved finished run: no autosave left
        assert ws.usage("bob", tmp_path).mine == 0 and u.total == size

        m.quota = ws.Quota(per_owner=int(1.5 * size), total=0, reserve=0)
        with pytest.raises(ws.QuotaExceeded, match="of your"):
            m.save(a, "alice-again")
        assert not (tmp_path / "alice-again.safetensors").exists()
        b = m.submit("bob", spec(steps=20))                # bob has room of his own
        assert m.wait(b, 10).state == "done"
        assert m.save(b, "bob-run").is_file()
        m.quota = ws.Quota(per_owner=0, total=int(2.5 * size), reserve=0)
        c = m.submit("carol", spec(steps=20))
        assert m.wait(c, 10).state == "done"
        if make_manager.backend == "ray":  # the run's state outlives its task only on disk: the
            # end's autosave was refused by the same quota, the page says so, and nothing is saved
            assert "for everyone" in m.status(c).autosave_problem
            with pytest.raises(ValueError, match="cannot be saved"):
                m.save(c, "carol-run")
        else:
            with pytest.raises(ws.QuotaExceeded, match="for everyone"):
                m.save(c, "carol-run")

        m.quota = ws.Quota(per_owner=size // 2, total=0, reserve=0)  # a running job's autosave
        d = m.submit("dave", spec())
        until(lambda: m.status(d).autosave_problem)
        st = m.status(d)
        assert st.state == "running" and "of your" in st.autosave_problem
        assert st.autosaved_at is None and not field(m, d, "autosave").exists()
        m.stop(d, wait=True)

        with pytest.raises(ws.QuotaExceeded, match="free"):  # the disk's reserve
            ws.check_room("erin", 10, root=tmp_path,
                          quota=ws.Quota(per_owner=0, total=0, reserve=10**15))
    finally:
        m.shutdown()


def test_an_upload_is_kept_per_owner_within_the_quota(tmp_path):
    q = ws.Quota(per_owner=1000, total=0, reserve=0)
    assert ws.kept_upload("alice", tmp_path) is None
    ws.keep_upload("alice", "../../shoe photo.png", b"x" * 600, tmp_path, q)
    assert ws.kept_upload("alice", tmp_path) == ("shoe-photo.png", b"x" * 600)
    assert ws.kept_upload("bob", tmp_path) is None
    ws.keep_upload("alice", "bag.jpg", b"y" * 900, tmp_path, q)   # replaces it: fits
    assert ws.kept_upload("alice", tmp_path) == ("bag.jpg", b"y" * 900)
    with pytest.raises(ws.QuotaExceeded):
        ws.keep_upload("alice", "big.jpg", b"z" * 1001, tmp_path, q)
    assert ws.kept_upload("alice", tmp_path) == ("bag.jpg", b"y" * 900)
    ws.forget_upload("alice", tmp_path)
    assert ws.kept_upload("alice", tmp_path) is None
    assert all(p.parent.parent.parent.name == ws.WORK for p in tmp_path.rglob("*") if p.is_file())


def test_a_finished_run_found_after_a_restart_can_be_saved(mgr, make_manager, tmp_path):
    jid = mgr.submit("alice", spec(steps=30))
    assert mgr.wait(jid, 10).state == "done"
    mgr.shutdown()
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   quota=ws.Quota(per_owner=0, total=0, reserve=0))
    try:
        assert m.recover() == [jid]
        st = m.status(jid, owner="alice")
        assert (st.state, st.interrupted, st.on_disk, st.step) == ("done", False, True, 30)
        path = m.save(jid, "found-again", owner="alice")
        assert read_metadata(path)["train"]["steps"] == 30
        assert not ws.autosave_path("alice", jid, tmp_path).exists()  # its autosave is cleaned up
    finally:
        m.shutdown()


def test_removing_a_run_deletes_its_autosave(mgr):
    jid = mgr.submit("s", spec(steps=20))
    assert mgr.wait(jid, 10).state == "done"
    path = field(mgr, jid, "autosave")
    assert path.is_file()
    with pytest.raises(KeyError):
        mgr.remove(jid, owner="other")
    mgr.remove(jid, owner="s")
    assert not path.exists()


def test_old_autosaves_of_finished_runs_are_swept(make_manager, tmp_path, monkeypatch):
    install_fake_registry(monkeypatch)
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   quota=ws.Quota(per_owner=0, total=0, reserve=0), keep_done_s=3600,
                   keep_other_s=7 * 3600)
    try:
        done, stopped = m.submit("s", spec(steps=20)), m.submit("s", spec())
        assert m.wait(done, 10).state == "done"
        until(lambda: m.status(stopped).step >= 10)
        m.stop(stopped, wait=True)
    finally:
        m.shutdown()
    paths = {j: ws.autosave_path("s", j, tmp_path) for j in (done, stopped)}
    old = time.time() - 2 * 3600                          # both written two hours ago
    for p in paths.values():
        os.utime(p, (old, old))
    m2 = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                    keep_done_s=3600, keep_other_s=7 * 3600)
    assert m2.recover() == [stopped]                      # the finished one was swept first
    assert not paths[done].exists() and paths[stopped].exists()


def test_work_ids_and_owner_tags():
    a, b = ws.new_work_id(), ws.new_work_id()
    assert a != b and ws.valid_work_id(a) and len(a) == 24
    assert not any(ws.valid_work_id(x) for x in ("", "short", "a" * 65, "../" * 8, None, "é" * 20))
    assert ws.owner_tag(a) == ws.owner_tag(a) != ws.owner_tag(b)
    assert ws.owner_tag(a).startswith("w") and a not in ws.owner_tag(a)


def test_an_owner_is_alive_while_any_of_its_tabs_is_open(make_manager, tmp_path, monkeypatch):
    """Two tabs of one browser (Train in one, Predict in the other): closing one keeps the runs;
    closing both stops them after the grace period, kept on disk."""
    install_fake_registry(monkeypatch)
    open_tabs = {"tab-1", "tab-2"}
    m = make_manager(builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                   grace_s=0.2, quota=ws.Quota(per_owner=0, total=0, reserve=0))
    m.set_liveness(lambda tab: tab in open_tabs)
    try:
        m.note_tab("alice", "tab-1")
        m.note_tab("alice", "tab-2")
        jid = m.submit("alice", spec())
        open_tabs.discard("tab-1")
        time.sleep(0.8)                                     # no heartbeat: tab-2 is enough
        assert m.status(jid).state == "running"
        open_tabs.discard("tab-2")
        until(lambda: m.status(jid).state == "stopped", timeout=10)
        assert m.status(jid).paused and m.status(jid).on_disk
    finally:
        m.shutdown()
