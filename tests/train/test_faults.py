"""Faults (issue 9): a training thread that raises, running out of memory, the disk filling while
saving, the process killed in the middle of a checkpoint. Each leaves the manager usable, the
previous checkpoint intact (byte for byte, and it loads), and a clear message in the job status.

The real Trainer with a real tiny model (train_helpers.TinyNet) on a task that misbehaves on
request keeps each case to well under a second; the out-of-memory case really asks the CPU allocator for a 16 TB batch.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import signal
import time
import warnings
from types import SimpleNamespace

import pytest
import torch

from karp_models.train import checkpoints as ck
from karp_models.train.checkpoints import DiskFullError, load_checkpoint, save_checkpoint
from karp_models.train.jobs import JobManager
from karp_models.train.runs import Prepared, RunSpec, list_runs
from karp_models.train.trainer import TrainConfig, Trainer
from train_helpers import TinyNet, TinyNetConfig, install_fake_registry

# --- the real Trainer and a real tiny model, on a task that can be told to go wrong


class FaultTask:
    """The Task protocol over a few random 8x8 images (whatever the batch size asked: the batch
    size only names the fault); at step 3 it does what `fault` says."""

    unit = "samples"
    items_per_epoch = 100
    eval_split = "test"

    def __init__(self, fault: str | None, batch_size: int):
        self.fault, self.batch_size, self.steps = fault, batch_size, 0

    def items_per_batch(self, batch_size):
        return batch_size

    def batch(self, split, batch_size, generator, device=None, augment=True):
        return torch.rand(4, 1, 8, 8, generator=generator), torch.randint(0, 4, (4,), generator=generator)

    def training_step(self, model, batch, ctx):
        if self.steps == 3 and self.fault == "raise":
            raise ValueError("loss became NaN (simulated bug in a training step)")
        if self.steps == 3 and self.fault == "oom-cpu":  # a real allocation: 16 TB of batch
            torch.empty((self.batch_size, 1 << 30), dtype=torch.float32)
        if self.steps == 3 and self.fault == "oom-cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB "
                                         "(GPU 0; 7.79 GiB total capacity)")
        if self.steps == 3 and self.fault == "memoryerror":
            raise MemoryError()
        time.sleep(0.001)
        self.steps += 1
        return model(*batch)[1]

    def evaluate(self, model, device=None, split="test", max_batches=None, batch_size=None):
        return {"loss": 1.0, "accuracy": 0.5}

    def meta(self):
        return {"classes": ["a", "b", "c", "d"]}


def builder(spec: RunSpec) -> Prepared:
    torch.manual_seed(0)
    task = FaultTask(spec.overrides.get("fault"), spec.config.batch_size)
    trainer = Trainer(TinyNet(TinyNetConfig()), task, spec.config)
    return Prepared(trainer=trainer, data=SimpleNamespace(source="synthetic"))


def spec(fault: str | None = None, steps: int = 20, batch: int = 4096) -> RunSpec:
    return RunSpec(model="tinynet", dataset="quadrants", device="cpu", preview_every=10**9,
                   config=TrainConfig(steps=steps, batch_size=batch),
                   overrides={"fault": fault} if fault else {})


@pytest.fixture
def mgr(make_manager, tmp_path, monkeypatch):
    """A manager of each backend (conftest.make_manager)."""
    install_fake_registry(monkeypatch)  # load_checkpoint rebuilds 'tinynet'
    m = make_manager(builder=builder, runs_dir=tmp_path / "runs", set_threads=False)
    yield m
    m.shutdown(timeout=10)


@pytest.fixture
def mgr_here(tmp_path, monkeypatch):
    """An in-process manager, for a test that patches this process (the disk's fsync)."""
    install_fake_registry(monkeypatch)
    m = JobManager(builder=builder, runs_dir=tmp_path / "runs", set_threads=False)
    yield m
    m.shutdown(timeout=10)


def prepared(mgr, jid):
    """The job's model as the queue holds it (None: freed, or never in the queue's process)."""
    return mgr._jobs[jid].prepared if isinstance(mgr, JobManager) else mgr.field(jid, "prepared")


def saved_before(mgr):
    jid = mgr.submit("s", spec())
    assert mgr.wait(jid, timeout=10).state == "done"
    path = mgr.save(jid, "previous")
    return path, path.read_bytes()


@pytest.fixture
def previous(mgr):
    """A run saved before the fault: its path and bytes."""
    return saved_before(mgr)


def intact(path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert load_checkpoint(path).model_name == "tinynet"


def still_usable(mgr: JobManager) -> None:
    """A new run goes through to the end, and saves."""
    jid = mgr.submit("s", spec())
    assert mgr.wait(jid, timeout=10).state == "done"
    assert mgr.save(jid, f"after-{jid}").is_file()
    assert mgr.running_slots == 0  # no slot leaked by the failed job


# --- the training thread


def test_training_thread_raising(mgr, previous):
    jid = mgr.submit("s", spec("raise"))
    st = mgr.wait(jid, timeout=10)
    assert st.state == "error"
    assert st.error == "ValueError: loss became NaN (simulated bug in a training step)"
    assert "Traceback" in st.error_detail and "_step" in st.error_detail
    with pytest.raises(ValueError, match="failed"):  # a broken run cannot overwrite a good one
        mgr.save(jid, "previous", overwrite=True)
    intact(*previous)
    still_usable(mgr)


@pytest.mark.parametrize("fault,where", [("oom-cpu", "this machine"), ("oom-cuda", "the GPU"),
                                         ("memoryerror", "this machine")])
def test_out_of_memory(mgr, previous, fault, where):
    jid = mgr.submit("s", spec(fault, batch=16384))
    st = mgr.wait(jid, timeout=10)
    assert st.state == "error"
    assert st.error.startswith(f"Out of memory on {where} with batch size 16,384")
    assert "smaller batch size" in st.error and "unaffected" in st.error
    assert prepared(mgr, jid) is None  # the failed run's model and optimizer are freed
    intact(*previous)
    still_usable(mgr)


def test_a_queued_job_starts_after_the_one_before_it_fails(mgr):
    bad = mgr.submit("s", spec("raise"))
    good = mgr.submit("t", spec())
    assert mgr.wait(bad, timeout=10).state == "error"
    assert mgr.wait(good, timeout=10).state == "done"


# --- the disk


def test_disk_full_while_saving(mgr_here, monkeypatch):
    """In-process only: it patches this process's fsync, and the Ray backend saves in its queue
    actor (the same runs.save_run code, tested here)."""
    mgr = mgr_here
    path, before = saved_before(mgr)
    jid = mgr.submit("s", spec(steps=40))
    assert mgr.wait(jid, timeout=10).state == "done"
    written, real_fsync = [], os.fsync

    def full_disk(fd):  # the data went to the temporary file; the disk ran out on flushing it
        written.append(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ck.os, "fsync", full_disk)
    with pytest.raises(DiskFullError, match="disk is full.*previous.safetensors.*unchanged") as e:
        mgr.save(jid, "previous", overwrite=True)
    assert isinstance(e.value, OSError)  # the page's `except OSError` shows it as a message
    with pytest.raises(DiskFullError, match="nothing was written"):
        mgr.save(jid, "new-name")
    monkeypatch.setattr(ck.os, "fsync", real_fsync)  # space again
    assert written
    assert sorted(p.name for p in path.parent.iterdir()) == ["previous.safetensors"]  # no temp
    intact(path, before)
    assert mgr.status(jid).state == "done" and not mgr._jobs[jid].saving
    assert mgr.save(jid, "previous", overwrite=True) == path  # space again: the save works
    assert path.read_bytes() != before


# --- the process killed while writing


def test_process_killed_in_the_middle_of_a_checkpoint(mgr, previous):
    """A child process (forked: torch is already loaded) starts overwriting the run, writes half
    of the new file and is killed with SIGKILL. The old file is whole and loads; the half-written
    temporary is never listed as a run, and a later listing sweeps it once it is stale."""
    path, before = previous
    model = TinyNet(TinyNetConfig(hidden=64))  # a different file than `previous`
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child
        pid = os.fork()                                       # only writes a file
    if pid == 0:  # the child
        try:
            os.close(read)
            real = os.fdopen

            class HalfThenHang:
                def __init__(self, f):
                    self.f = f

                def __enter__(self):
                    return self

                def __exit__(self, *a):
                    return self.f.__exit__(*a)

                def write(self, data):
                    self.f.write(data[:len(data) // 2])
                    self.f.flush()
                    os.write(write, b"half")
                    time.sleep(60)  # killed here

            os.fdopen = lambda fd, *a, **k: HalfThenHang(real(fd, *a, **k))
            save_checkpoint(path, model, model_name="tinynet",
                            meta={"dataset": "quadrants", "classes": ["a", "b", "c", "d"]})
        finally:
            os._exit(1)
    os.close(write)
    try:
        assert os.read(read, 4) == b"half"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
    temps = list(path.parent.glob(".previous.safetensors.*.tmp"))
    assert len(temps) == 1 and 0 < temps[0].stat().st_size  # the half-written file
    intact(path, before)
    assert [p.name for p, _ in list_runs(path.parent)] == ["previous.safetensors"]
    assert temps[0].exists()  # young: it could be someone's save in progress
    old = time.time() - 2 * 3600
    os.utime(temps[0], (old, old))
    list_runs(path.parent)
    assert not temps[0].exists()  # stale: swept
    still_usable(mgr)
    intact(path, before)


def test_status_snapshots_are_plain_data(mgr):
    jid = mgr.submit("s", spec("raise"))
    st = mgr.wait(jid, timeout=10)
    assert dataclasses.is_dataclass(st) and st.error and st.state == "error"


# --- a flood of submissions


def test_the_queue_is_bounded_per_session_and_in_all(make_manager, tmp_path, monkeypatch):
    """A student pressing Start again and again, then a whole class: refused with a message once
    the bounds are reached, and the runs already there are unaffected."""
    from karp_models.train.jobs import QueueFull

    install_fake_registry(monkeypatch)
    long = spec(steps=10**6)
    m = make_manager(builder=builder, runs_dir=tmp_path / "runs", set_threads=False,
                     max_active_per_session=2, max_queued=3)
    try:
        a, b = m.submit("eager", long), m.submit("eager", long)
        with pytest.raises(QueueFull, match="already have 2 runs"):
            m.submit("eager", long)
        for s in ("s1", "s2"):
            m.submit(s, long)
        with pytest.raises(QueueFull, match="queue is full"):
            m.submit("s3", long)
        assert m.status(a).state == "running" and m.status(b).queue_position == 1
        m.stop(b)  # leaves the queue: room for one
        m.submit("s3", long)
        with pytest.raises(QueueFull, match="queue is full"):  # resuming also queues
            m.resume(b)
        m.stop(a, wait=True)  # s1 starts: one fewer waiting
        assert m.wait(m.submit("eager", long), timeout=0.1).state == "queued"  # room again
    finally:
        m.shutdown(timeout=10)


def test_the_job_log_shows_the_limit_held(make_manager, tmp_path, monkeypatch):
    """KARP_JOBS_LOG: the server-side record the load test reads to check the queue."""
    install_fake_registry(monkeypatch)
    log = tmp_path / "jobs.log"
    monkeypatch.setenv("KARP_JOBS_LOG", str(log))
    m = make_manager(builder=builder, runs_dir=tmp_path / "runs", set_threads=False)
    try:
        ids = [m.submit(f"s{i}", spec(steps=10)) for i in range(3)]
        assert [m.wait(j, timeout=10).state for j in ids] == ["done"] * 3
    finally:
        m.shutdown(timeout=10)
    rows = [r.split() for r in log.read_text().splitlines()]
    assert [r[1] for r in rows].count("start") == 3 and [r[1] for r in rows].count("done") == 3
    assert max(int(r[4]) for r in rows) == 1 and max(int(r[5]) for r in rows) == 2
