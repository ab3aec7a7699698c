"""What a training job does on its worker thread (train/jobs.py starts the thread and keeps the
queue's books): build its run, or read it back from its autosave, train it, keep its live
previews and autosaves between records, and turn a failure into words. Never touches Streamlit;
knows no model family (the Task makes the previews, train/previews.py).

Threads: `torch.set_num_threads` sets a process-wide default that a thread adopts at its first
parallel op; with OpenMP a thread that already ran one keeps its own count. So each worker sets
it once, first thing, on its own thread with `device.set_threads(for_app=True)` (one core stays
free for the Streamlit server on small machines; KARP_THREADS overrides), which also changes the
default for threads started later. The global RNG is process-wide: a fresh job seeds it as the
CLI does, and previews run inside `torch.random.fork_rng` so they do not shift it.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from typing import Callable, Protocol

from karp_models import device as dev
from karp_models.train import previews, timelapse
from karp_models.train.autosave import Autosaver
from karp_models.train.errors import explain_error, release_memory
from karp_models.train.jobstatus import DONE, ERROR, RUNNING, STOPPED, Job
from karp_models.train.runs import Prepared, RunSpec


def run_job(job: Job, *, builder: Callable[[RunSpec], Prepared], autosaver: Autosaver,
            changed: threading.Condition, set_threads: bool) -> tuple[str, str | None, str | None]:
    """Build (if needed) and train `job` on this thread until it finishes, is stopped or fails;
    (state: done / stopped / error, the error in words, its traceback). `changed` is the
    manager's condition: job fields change under its lock and each record notifies it.
    set_threads: set the app's torch thread count on this thread first (see jobs.py)."""
    state, error, detail = DONE, None, None
    trained = False  # the error (if any) came while training, not while reading the autosave
    try:
        if set_threads:
            dev.set_threads(for_app=True)  # on this thread, and the default: see jobs.py
        if job.prepared is None:
            spec = job.spec
            if job.from_disk:  # after a restart, or set aside: continue from the autosave
                spec = dataclasses.replace(spec, resume_from=str(job.autosave))
            prepared = builder(spec)
            with changed:
                job.prepared, job.from_disk = prepared, False
                job.params = sum(t.numel() for t in prepared.trainer.model.parameters())
                job.charts = tuple(getattr(prepared.trainer.task, "charts", ()))
                job.records[:] = list(getattr(prepared.trainer, "history", []) or [])
        trainer = job.prepared.trainer
        if job.stop_event.is_set():  # stopped while loading: no last evaluation needed
            state = STOPPED
            return state, error, detail
        trained = True
        with changed:
            job.t_run = time.monotonic()
            job.p_run = job.records[-1].progress if job.records else 0.0
            autosaver.start(job, trainer.step)
        preview(job, changed, force=True)
        for rec in trainer.run(stop=job.stop_event, quick_stop=True):
            with changed:
                job.records.append(rec)
                if rec.final:
                    job.final_metrics = None  # the model changed since any cached eval
                changed.notify_all()
            preview(job, changed, force=rec.final)
            if not rec.final and autosaver.due(job):
                autosaver.save(job, RUNNING)  # the trainer is paused at a record: consistent
        if job.stop_event.is_set() and not trainer.done():
            state = STOPPED
        autosaver.save(job, state)  # stopped or done: a refresh or a restart finds it
    except BaseException as e:  # noqa: BLE001 - the error is shown on the page
        state = ERROR
        error = explain_error(e, job.spec.config.batch_size)
        detail = traceback.format_exc()
    finally:
        if job.writer is not None:  # an autosave being written: let it finish first
            job.writer.join()
        if state == ERROR:  # a failed run cannot be saved or resumed: free its memory now
            with changed:
                job.prepared = None
                if trained:  # its autosave would only fail the same way again
                    autosaver.drop(job)
                    job.from_disk = False
                # else: reading the autosave failed (its data missing?): keep it to retry
            release_memory()
    return state, error, detail


def preview(job: Job, lock: threading.Condition | threading.RLock, force: bool = False) -> None:
    """Make the job's live preview when one is due (every `preview_every` steps, or `force`),
    on the worker thread between records while the trainer is paused; keep its snapshot."""
    trainer = job.prepared.trainer
    every = job.spec.preview_every or getattr(trainer.task, "preview_every", 50)
    # due at each multiple of `every` (a run continued from an odd step comes back on that grid)
    if not force and job.last_preview >= 0 and trainer.step // every <= job.last_preview // every:
        return
    job.last_preview = trainer.step
    out = previews.make(trainer.task, trainer.model, trainer.device, trainer.step)
    with lock:
        job.preview = out
        previews.keep_snapshot(job.snapshots, out)
        if getattr(trainer.task, "timelapse", False):  # a task that asks for whole-model snapshots
            if job.timelapse is None:                   # a continued run goes on from its own
                job.timelapse = timelapse.for_model(trainer.model, every, job.prepared.timelapse) or False
            if job.timelapse:
                job.timelapse.offer(trainer.step, trainer.model, last=force)
        if getattr(out, "snapshot", None) is not None:
            job.snapshot_key = out.snapshot_key
        if isinstance(lock, threading.Condition):
            lock.notify_all()  # a new preview is news, as a record is (a cluster relays both)


# --- where a job runs (the job manager's backend seam)


class Executor(Protocol):
    """Runs one job for the manager (the backend seam): `run` is called on the manager's worker
    thread and returns when the job is done, stopped or failed, as worker.run_job does; the job's
    fields change under `changed`. device_key: the device kind a spec trains on (the queue's
    limit counts running jobs per kind). InProcess (the default) trains on that thread;
    train/cluster.RayExecutor trains in a Ray task on a cluster."""

    def device_key(self, spec: RunSpec) -> str: ...

    def run(self, job: Job, *, builder: Callable[[RunSpec], Prepared], autosaver: Autosaver,
            changed: threading.Condition, set_threads: bool) -> tuple[str, str | None, str | None]: ...


class InProcess:
    """Trains each job on the manager's worker thread in this process (train/worker.py)."""

    def device_key(self, spec: RunSpec) -> str:
        return dev.pick_device(spec.device).type

    def run(self, job: Job, **kw) -> tuple[str, str | None, str | None]:
        return run_job(job, **kw)
