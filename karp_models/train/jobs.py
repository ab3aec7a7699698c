"""The training queue of the app: a process-wide FIFO of worker threads with stop, resume,
thread-safe status snapshots, live previews, saving, autosaves, recovery after a restart, and a
reaper for owners with no open tab.

Jobs belong to an owner: the anonymous work identity of a browser (ui/identity.py), so a
refreshed or reopened tab finds them again and no other browser sees them. A running job
autosaves (model, optimisers, trainer state, records: a karp checkpoint, written atomically)
every `autosave_s` seconds or `autosave_steps` steps, checked at each record (every 10 steps),
and when it stops or finishes, into `<runs>/.work/<owner>/autosave/<job>.safetensors`
(train/workspace.py): the trainer waits only while its state is copied; a writer thread
encodes and writes the copy. A job whose owner has no tab open is stopped after the grace period, as
before, but now kept: its autosave is on disk and its model leaves memory, and Resume reads it
back. A new manager's recover() takes up the autosaves a stopped server left (a restart, a
crash): each is a stopped job at its last autosave, and resuming it continues the run exactly,
as the Trainer's resume through a checkpoint does. Lost work is bounded by the interval plus
one record's steps (bench/bench_autosave.py measures it).

It knows no model family: a job is a RunSpec, built by runs.build_run into a Trainer whose Task
makes the previews (train/previews.py). Follows Streamlit's multithreading guide (option 1):
worker threads never call `st.*`; pages poll `status()` snapshots from an
`st.fragment(run_every=...)`. Nothing here imports streamlit, so the same jobs run from a
notebook or a test.

Threads: `torch.set_num_threads` sets a process-wide default that a thread adopts at its first
parallel op; with OpenMP a thread that already ran one keeps its own count. So each worker sets
it once, first thing, on its own thread with `device.set_threads(for_app=True)` (one core stays
free for the Streamlit server on small machines; KARP_THREADS overrides), which also changes the
default for threads started later. The global RNG is process-wide: a fresh job seeds it as the
CLI does, and previews run inside `torch.random.fork_rng` so they do not shift it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from karp_models import device as dev
from karp_models.i18n import _, language, using
from karp_models.train import previews, runs, workspace
from karp_models.train.checkpoints import CheckpointError, read_trainer_summary, write_checkpoint
from karp_models.train.errors import explain_error, is_out_of_memory, release_memory
from karp_models.train.jobstatus import (ACTIVE, DONE, ERROR, QUEUED, RUNNING, STOPPED, JobStatus,
                                         QueueFull, Job, default_label, snapshot)
from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.sessions import Sessions
from karp_models.train.tasks.base import final_metrics
from karp_models.train.trainer import Record

# --- the manager


class JobManager:
    """Runs training jobs in worker threads, at most `limit` at a time per device, FIFO.

    Jobs belong to an owner (the `session_id` argument: a browser's work identity, any string in
    tests). An owner is alive while it sent a heartbeat within `grace_s` seconds or the optional
    liveness callback says so; a reaper thread (alive only while jobs are queued or running)
    stops the jobs of owners that are not, and keeps them on disk when they have an autosave.
    autosave_s / autosave_steps: the autosave interval (None / 0: autosave off); quota: disk
    limits for autosaves and saved runs (default: from the environment); keep_done_s /
    keep_other_s: how long the autosave of a finished / a stopped or interrupted run stays
    after its last write. The builder must honour RunSpec.resume_from (runs.build_run does):
    that is how a job on disk is read back. Every public method is thread-safe and returns
    quickly, except save() (it evaluates on the whole split), recover() (it reads headers) and
    stop(wait=True) / wait() / shutdown(), which join. Methods that act on a job take an
    optional `owner`: given, a job of another owner is refused as if it did not exist.
    """

    def __init__(self, *, limit: int = 1, grace_s: float = 60.0,
                 builder: Callable[[RunSpec], Prepared] = runs.build_run,
                 runs_dir: str | os.PathLike | None = None, keep_per_session: int = 12,
                 set_threads: bool = True, max_active_per_session: int = 3,
                 max_queued: int = 60, autosave_s: float | None = None, autosave_steps: int = 0,
                 quota: workspace.Quota | None = None, keep_done_s: float = 24 * 3600.0,
                 keep_other_s: float = 7 * 24 * 3600.0):
        self.limit = max(1, int(limit))
        self.grace_s = float(grace_s)
        self.builder = builder
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.keep_per_session = keep_per_session
        self.max_active_per_session = max(1, int(max_active_per_session))
        self.max_queued = max(1, int(max_queued))
        self._set_threads = set_threads
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}  # insertion order = submission order
        self._queue: list[Job] = []
        self._running: dict[str, int] = {}  # device key -> running jobs
        self._sessions = Sessions(grace_s)
        self._reaper: threading.Thread | None = None
        self.autosave_s = float(autosave_s) if autosave_s else None
        self.autosave_steps = max(0, int(autosave_steps or 0))
        self.quota = quota
        self.keep_done_s, self.keep_other_s = float(keep_done_s), float(keep_other_s)

    @property
    def autosaving(self) -> bool:
        return self.autosave_s is not None or self.autosave_steps > 0

    # --- sessions

    def heartbeat(self, session_id: str) -> None:
        """The page is open: keep this session's jobs alive for another grace period."""
        with self._lock:
            self._sessions.beat(session_id)

    def set_liveness(self, fn: Callable[[str], bool | None] | None) -> None:
        """fn(tab) -> True while that browser tab is connected (None: unknown); an owner with
        no tab noted (note_tab) is probed by its own name.

        The app passes Streamlit's runtime check, so a person reading another page, in any
        of their tabs, keeps their jobs; the heartbeat alone covers the Train page.
        """
        with self._lock:
            self._sessions.liveness = fn

    def note_tab(self, owner: str, tab: str) -> None:
        """Browser tab `tab` (a Streamlit session id) belongs to `owner`."""
        with self._lock:
            self._sessions.note_tab(owner, tab)

    def reap(self) -> list[str]:
        """Stop the queued and running jobs of sessions that are no longer alive; their ids."""
        now = time.monotonic()
        stopped = []
        with self._lock:
            sessions = self._sessions
            for job in list(self._jobs.values()):
                if job.state in ACTIVE and not sessions.alive(job.session_id, now):
                    sessions.reaped.add(job.session_id)
                    job.paused = True
                    self._stop_locked(job)
                    stopped.append(job.job_id)
            for job in list(self._jobs.values()):
                if job.session_id in sessions.reaped and job.state not in ACTIVE:
                    self._set_aside_locked(job)
            sessions.forget_dead({j.session_id for j in self._jobs.values()}, now)
        return stopped

    def _set_aside_locked(self, job: Job) -> None:
        """A job of an owner with no tab open that is neither queued nor running: keep it on
        disk (its model leaves memory) when its autosave is there, else forget it."""
        if job.saving:
            return
        if job.autosaved is not None and job.autosave is not None and job.autosave.is_file():
            if job.prepared is not None:
                job.prepared = None
                job.from_disk = True
        elif not job.from_disk:
            self._jobs.pop(job.job_id, None)

    def _reap_loop(self) -> None:
        every = max(0.05, min(self.grace_s / 4, 5.0))
        with self._lock:
            due = time.monotonic() + every
            while any(j.state in ACTIVE for j in self._jobs.values()):
                self._changed.wait(timeout=max(0.0, due - time.monotonic()))
                if time.monotonic() >= due:
                    self.reap()
                    due = time.monotonic() + every
            self._reaper = None

    def _ensure_reaper_locked(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap_loop, name="karp-jobs-reaper",
                                            daemon=True)
            self._reaper.start()

    def set_limit(self, limit: int) -> None:
        """Change how many jobs run at once per device; queued jobs start if there is room now.
        Lowering it stops nothing: running jobs finish and the queue waits."""
        with self._lock:
            self.limit = max(1, int(limit))
            self._dispatch_locked()
            self._changed.notify_all()

    # --- submit, stop, resume

    def submit(self, session_id: str, spec: RunSpec) -> str:
        """Queue a run for this owner; it starts when its device has a free slot. Its id."""
        device_key = dev.pick_device(spec.device).type
        with self._lock:
            n = self._sessions.next_count(session_id)
        job = Job(job_id=uuid.uuid4().hex[:10], session_id=session_id, spec=spec,
                   device_key=device_key, label=spec.label or f"#{n} {default_label(spec)}",
                   created=time.time(), language=language())
        if self.autosaving:
            try:
                job.autosave = workspace.autosave_path(session_id, job.job_id, self.runs_dir)
            except ValueError as e:  # a runs folder that may not be used: train, but say so
                job.autosave_problem = str(e)
        with self._lock:
            self._check_room_locked(session_id)
            self._sessions.beat(session_id, only_new=True)
            self._forget_old_locked(session_id)
            self._jobs[job.job_id] = job
            self._queue.append(job)
            self._log_locked("submit", job)
            self._dispatch_locked()
            self._ensure_reaper_locked()
            self._changed.notify_all()
        return job.job_id

    def stop(self, job_id: str, wait: bool = False, timeout: float | None = None,
             owner: str | None = None) -> None:
        """Ask a job to stop. A queued job leaves the queue at once; a running one stops before
        its next step, after a last evaluation (and an autosave). wait=True joins its thread."""
        with self._lock:
            job = self._get(job_id, owner)
            self._stop_locked(job)
            thread = job.thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _stop_locked(self, job: Job) -> None:
        if job.state == QUEUED:
            self._queue.remove(job)
            job.state = STOPPED
            self._changed.notify_all()
        elif job.state == RUNNING:
            job.stop_event.set()

    def resume(self, job_id: str, owner: str | None = None) -> None:
        """Queue a stopped job again; it continues from its trainer's in-memory state, or from
        its autosave when it is on disk (after a restart, or set aside while no tab was open).
        A job on disk whose rebuilding failed (say, its dataset was missing) may be retried."""
        with self._lock:
            job = self._get(job_id, owner)
            if job.state != STOPPED and not (job.state == ERROR and job.from_disk):
                raise ValueError(_("only a stopped job can be resumed; this one is {state}").format(
                    state=job.state))
            if job.saving:
                raise ValueError(_("the run is being saved; resume it when that is done"))
            self._check_room_locked(job.session_id)
            job.stop_event = threading.Event()
            job.interrupted = job.paused = False
            job.error = job.error_detail = None
            job.state = QUEUED
            self._sessions.beat(job.session_id)
            self._queue.append(job)
            self._dispatch_locked()
            self._ensure_reaper_locked()
            self._changed.notify_all()

    def remove(self, job_id: str, owner: str | None = None) -> None:
        """Forget a job that is not queued or running (frees its model and optimizer) and
        delete its autosave."""
        with self._lock:
            job = self._get(job_id, owner)
            if job.state in ACTIVE or job.saving:
                raise ValueError(_("stop the job before removing it"))
            del self._jobs[job_id]
            self._drop_autosave_locked(job)

    def _drop_autosave_locked(self, job: Job) -> None:
        if job.autosave is not None:
            with contextlib.suppress(OSError):
                job.autosave.unlink(missing_ok=True)
        job.autosaved = None

    def _log_locked(self, event: str, job: Job) -> None:
        """With KARP_JOBS_LOG=<file>, one line per event: time, event, job, device, running on
        that device and queue length after it. How the load test checks the limit from outside."""
        path = os.environ.get("KARP_JOBS_LOG")
        if not path:
            return
        try:
            with open(path, "a") as f:
                f.write(f"{time.time():.3f} {event} {job.job_id} {job.device_key} "
                        f"{self._running.get(job.device_key, 0)} {len(self._queue)}\n")
        except OSError:
            pass

    def _check_room_locked(self, session_id: str) -> None:
        """The queue is bounded: a few active runs per session, and a total that can wait."""
        mine = sum(j.session_id == session_id and j.state in ACTIVE for j in self._jobs.values())
        if mine >= self.max_active_per_session:
            raise QueueFull(_("you already have {n} runs waiting or running; stop one of them "
                              "before starting another").format(n=mine))
        if len(self._queue) >= self.max_queued:
            raise QueueFull(_("the training queue is full ({n} runs waiting); try again when some "
                              "have finished").format(n=len(self._queue)))

    def _forget_old_locked(self, session_id: str) -> None:
        mine = [j for j in self._jobs.values() if j.session_id == session_id]
        for j in mine[:max(0, len(mine) - self.keep_per_session + 1)]:
            if j.state not in ACTIVE and not j.saving:
                del self._jobs[j.job_id]
                self._drop_autosave_locked(j)

    def _get(self, job_id: str, owner: str | None = None) -> Job:
        job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.session_id != owner):
            raise KeyError(_("no job {job} (a removed job, or an old one without an autosave, "
                             "is forgotten)").format(job=repr(job_id)))
        return job

    # --- scheduling

    def _dispatch_locked(self) -> None:
        for job in list(self._queue):
            if self._running.get(job.device_key, 0) >= self.limit:
                continue
            self._queue.remove(job)
            self._running[job.device_key] = self._running.get(job.device_key, 0) + 1
            job.state = RUNNING
            self._log_locked("start", job)
            job.thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                          name=f"karp-job-{job.job_id}")
            job.thread.start()

    def _ensure_threads(self) -> None:
        if self._set_threads:
            dev.set_threads(for_app=True)  # on this thread, and the default: see the docstring

    def _work(self, job: Job) -> None:
        """The worker thread: build if needed, train, keep previews; never touches Streamlit.
        Its words (an error, a preview's) are in the language of the session that started it."""
        with using(job.language):
            self._work_in(job)

    def _work_in(self, job: Job) -> None:
        state, error, detail = DONE, None, None
        with self._lock:
            job.t_work = time.monotonic()
        trained = False  # the error (if any) came while training, not while reading the autosave
        try:
            self._ensure_threads()
            if job.prepared is None:
                spec = job.spec
                if job.from_disk:  # after a restart, or set aside: continue from the autosave
                    spec = dataclasses.replace(spec, resume_from=str(job.autosave))
                prepared = self.builder(spec)
                with self._lock:
                    job.prepared, job.from_disk = prepared, False
                    job.params = sum(t.numel() for t in prepared.trainer.model.parameters())
                    job.charts = tuple(getattr(prepared.trainer.task, "charts", ()))
                    job.records[:] = list(getattr(prepared.trainer, "history", []) or [])
            trainer = job.prepared.trainer
            if job.stop_event.is_set():  # stopped while loading: no last evaluation needed
                state = STOPPED
                return
            trained = True
            with self._lock:
                job.t_run = time.monotonic()
                job.p_run = job.records[-1].progress if job.records else 0.0
                job.autosave_due = job.t_run + (self.autosave_s or 0.0)
                job.autosave_step = trainer.step
            self._preview(job, force=True)
            for rec in trainer.run(stop=job.stop_event, quick_stop=True):
                with self._lock:
                    job.records.append(rec)
                    if rec.final:
                        job.final_metrics = None  # the model changed since any cached eval
                    self._changed.notify_all()
                self._preview(job, force=rec.final)
                if not rec.final and self._autosave_due(job):
                    self._autosave(job, RUNNING)  # the trainer is paused at a record: consistent
            if job.stop_event.is_set() and not trainer.done():
                state = STOPPED
            self._autosave(job, state)  # stopped or done: a refresh or a restart finds it
        except BaseException as e:  # noqa: BLE001 - the error is shown on the page
            state = ERROR
            error = explain_error(e, job.spec.config.batch_size)
            detail = traceback.format_exc()
        finally:
            if job.writer is not None:  # an autosave being written: let it finish first
                job.writer.join()
            if state == ERROR:  # a failed run cannot be saved or resumed: free its memory now
                with self._lock:
                    job.prepared = None
                    if trained:  # its autosave would only fail the same way again
                        self._drop_autosave_locked(job)
                        job.from_disk = False
                    # else: reading the autosave failed (its data missing?): keep it to retry
                release_memory()
            with self._lock:
                job.state, job.error, job.error_detail = state, error, detail
                job.t_run = None
                job.wall_s += time.monotonic() - job.t_work
                job.t_work = None
                self._running[job.device_key] -= 1
                self._log_locked(state, job)
                if job.session_id in self._sessions.reaped:
                    self._set_aside_locked(job)
                self._dispatch_locked()
                self._changed.notify_all()
            self.sweep()

    # --- autosave (on the worker thread, between records: the trainer is paused there)

    def _autosave_due(self, job: Job) -> bool:
        if job.autosave is None:
            return False
        if self.autosave_s is not None and time.monotonic() >= job.autosave_due:
            return True
        step = job.prepared.trainer.step
        return bool(self.autosave_steps) and step - job.autosave_step >= self.autosave_steps

    def _autosave(self, job: Job, state: str) -> None:
        """Autosave the job: a snapshot of its state taken here, on the worker thread while the
        trainer is paused at a record (tensors cloned: milliseconds), then encoded and written
        atomically by a writer thread while training goes on; at a stop or the end, written
        before this returns. A problem (quota, full disk) is kept in job.autosave_problem, the
        previous autosave stays intact and training goes on. While the previous write is still
        going, a periodic autosave waits for the next record."""
        if job.autosave is None or job.prepared is None:
            return
        writer = job.writer
        if writer is not None and writer.is_alive():
            if state == RUNNING:
                return
            writer.join()
        trainer = job.prepared.trainer
        now = time.time()
        with self._lock:
            info = {"job_id": job.job_id, "owner": job.session_id, "label": job.label,
                    "created": job.created, "state": state, "time": now,
                    "wall_s": job.wall_s + (time.monotonic() - job.t_work if job.t_work else 0.0),
                    "saved": list(job.saved), "snapshot_key": job.snapshot_key}
            snapshots = list(job.snapshots)
        t0 = time.perf_counter()
        try:
            parts = runs.run_parts(job.spec, job.prepared, {}, snapshots, job.snapshot_key,
                                   extra={"autosave": info, "spec": runs.spec_meta(job.spec)},
                                   copy=True)
        except Exception as e:  # noqa: BLE001 - an autosave must never stop the training
            with self._lock:
                job.autosave_problem = str(e) or type(e).__name__
            return
        paused_s, step = time.perf_counter() - t0, trainer.step
        with self._lock:
            job.autosave_due = time.monotonic() + (self.autosave_s or 0.0)
            job.autosave_step = step
        args = (job, parts, now, step, paused_s)
        if state == RUNNING:
            job.writer = threading.Thread(target=self._write_autosave, args=args, daemon=True,
                                          name=f"karp-autosave-{job.job_id}")
            job.writer.start()
        else:
            self._write_autosave(*args)

    def _write_autosave(self, job: Job, parts: tuple, at: float, step: int,
                        paused_s: float) -> None:
        """Encode and write one autosave snapshot (taken at time.time() `at`, at `step`)."""
        t = time.perf_counter()
        root = job.autosave.parents[3]  # <runs>/.work/<owner>/autosave/<job>.safetensors
        problem = None
        try:
            write_checkpoint(job.autosave, *parts, before_write=lambda n: workspace.check_room(
                job.session_id, n, replacing=job.autosave, root=root, quota=self.quota))
        except Exception as e:  # noqa: BLE001 - kept for the page; training goes on
            problem = str(e) or type(e).__name__
        with self._lock:
            job.autosave_problem = problem
            if problem is None:
                job.autosaved = (at, step)
                job.autosave_costs.append((paused_s, time.perf_counter() - t))
                del job.autosave_costs[:-100]

    # --- after a restart

    def recover(self) -> list[str]:
        """Take up the runs a stopped server (a restart, a crash, a killed process) left: one
        job per autosave that no job of this manager holds, on disk, with its records, as
        'stopped' (marked interrupted when it was running) or 'done'. Their owners find them
        again; resuming continues from the autosave. Old autosaves are swept first. Returns the
        recovered jobs' ids, oldest first, and says on stderr what it found."""
        try:
            self.sweep()
            files = workspace.autosaves(self.runs_dir)
        except (ValueError, OSError):  # no usable runs folder: nothing to recover
            return []
        found, interrupted = [], 0
        for path, meta in files:
            info = meta["autosave"]
            try:
                job_id, owner = str(info["job_id"]), str(info["owner"])
                if workspace.autosave_path(owner, job_id, self.runs_dir) != path:
                    continue  # a file moved by hand: its owner would not match its folder
                spec = runs.spec_from_meta(meta["spec"])
                summary = read_trainer_summary(path)
                records = [Record(**r) for r in summary.get("history") or []]
                device_key = dev.pick_device(spec.device).type
            except (KeyError, TypeError, ValueError, RuntimeError, CheckpointError):
                continue
            key = info.get("snapshot_key") or "snapshots"
            snaps = meta.get(key) or {}
            job = Job(job_id=job_id, session_id=owner, spec=spec, device_key=device_key,
                      label=str(info.get("label") or default_label(spec)),
                      created=float(info.get("created") or 0.0),
                      state=DONE if info.get("state") == DONE else STOPPED, records=records,
                      autosave=path, autosaved=(float(info.get("time") or 0.0),
                                                int(summary.get("step") or 0)),
                      interrupted=info.get("state") in ACTIVE, from_disk=True,
                      wall_s=float(info.get("wall_s") or 0.0), saved=list(info.get("saved") or []),
                      snapshot_key=key,
                      snapshots=[(int(s), np.asarray(w, np.float32))
                                 for s, w in zip(snaps.get("steps", []), snaps.get("weights", []))])
            with self._lock:
                if job_id in self._jobs:
                    continue
                self._jobs[job_id] = job
                self._sessions.next_count(owner)
            found.append(job_id)
            interrupted += job.interrupted
        if found:
            print(f"karp: {len(found)} run(s) found in autosaves, {interrupted} of them "
                  f"interrupted while training; their owners can resume them on the Train page",
                  file=sys.stderr)
        return found

    def sweep(self) -> None:
        """Delete old autosaves (workspace.sweep) except those of jobs in memory or in use, and
        forget the jobs on disk whose autosave went."""
        if not self.autosaving:
            return
        with self._lock:
            skip = {j.autosave for j in self._jobs.values() if j.autosave is not None
                    and (not j.from_disk or j.state in ACTIVE or j.saving)}
        try:
            removed = set(workspace.sweep(self.runs_dir, keep_done_s=self.keep_done_s,
                                          keep_other_s=self.keep_other_s, skip=skip))
        except (ValueError, OSError):
            return
        with self._lock:
            for j in list(self._jobs.values()):
                if j.autosave in removed and j.from_disk and j.state not in ACTIVE:
                    del self._jobs[j.job_id]

    # --- previews (made on the worker thread between records, while the trainer is paused)

    def _preview(self, job: Job, force: bool = False) -> None:
        trainer = job.prepared.trainer
        every = job.spec.preview_every or getattr(trainer.task, "preview_every", 50)
        if not force and job.last_preview >= 0 and trainer.step - job.last_preview < every:
            return
        job.last_preview = trainer.step
        out = previews.make(trainer.task, trainer.model, trainer.device, trainer.step)
        with self._lock:
            job.preview = out
            previews.keep_snapshot(job.snapshots, out)
            if getattr(out, "snapshot", None) is not None:
                job.snapshot_key = out.snapshot_key

    # --- status

    def status(self, job_id: str, owner: str | None = None) -> JobStatus:
        with self._lock:
            return snapshot(self._get(job_id, owner), self._queue)

    def jobs(self, session_id: str | None = None) -> list[JobStatus]:
        """Snapshots of an owner's jobs (all jobs when None), oldest first."""
        with self._lock:
            return [snapshot(j, self._queue) for j in self._jobs.values()
                    if session_id is None or j.session_id == session_id]

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the job is neither queued nor running (or timeout); its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            job = self._get(job_id)
            while job.state in ACTIVE:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(timeout=left)
            thread = job.thread
            snap = snapshot(job, self._queue)
        if snap.state not in ACTIVE and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return snap

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop every job and join every thread this manager started (tests; process exit)."""
        with self._lock:
            for job in list(self._jobs.values()):
                self._stop_locked(job)
            threads = [j.thread for j in self._jobs.values() if j.thread is not None]
            self._changed.notify_all()
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout)
        with self._lock:
            reaper = self._reaper
            self._changed.notify_all()
        if reaper is not None:
            reaper.join(timeout)

    # --- saving runs

    def save(self, job_id: str, name: str, *, overwrite: bool = False,
             owner: str | None = None) -> Path:
        """Save a stopped or finished run under `name` in the runs folder; the file's path.

        Runs on the caller's thread (seconds: it evaluates on the whole split, and a job on
        disk is read back first). Raises ValueError for a bad name or a running/failed job,
        FileExistsError for a taken name, workspace.QuotaExceeded over a disk quota (nothing
        written). The file is a karp checkpoint with the CLI's metadata, the trainer state
        (runs.save_run) and its owner's tag, so every view can open it and training can
        continue from it. A finished run's autosave is deleted once it is saved.
        """
        path = runs.run_path(name, self.runs_dir)
        if path.exists() and not overwrite:
            raise FileExistsError(_("a run named {name} already exists in {folder}").format(
                name=repr(path.stem), folder=path.parent))
        with self._lock:
            job = self._get(job_id, owner)
            if job.state in ACTIVE:
                raise ValueError(_("stop the run before saving it (its weights are changing)"))
            if job.state == ERROR or (job.prepared is None and not job.from_disk):
                raise ValueError(_("a run that failed or never started cannot be saved"))
            if job.saving:
                raise ValueError(_("this run is being saved already"))
            job.saving = True
        try:
            if job.prepared is None:  # on disk only: read it back from its autosave
                prepared = self.builder(dataclasses.replace(job.spec,
                                                            resume_from=str(job.autosave)))
                with self._lock:
                    job.prepared, job.from_disk = prepared, False
            trainer = job.prepared.trainer
            if job.final_metrics is None or job.final_metrics[0] != trainer.step:
                try:  # the whole split, whatever the last record used
                    job.final_metrics = (trainer.step, final_metrics(trainer.task, trainer.model,
                                                                     trainer.device))
                except (MemoryError, RuntimeError) as e:
                    if not is_out_of_memory(e):
                        raise
                    release_memory()
                    raise ValueError(_("out of memory while evaluating the run for saving; nothing "
                                       "was written. Close other runs, then save again.")) from e
            runs.save_run(path, job.spec, job.prepared, job.final_metrics[1], job.snapshots,
                          job.snapshot_key, extra={"owner": job.session_id},
                          before_write=lambda n: workspace.check_room(
                              job.session_id, n, replacing=[path] + (
                                  [job.autosave] if job.autosave and job.state == DONE else []),
                              root=path.parent, quota=self.quota))
        finally:
            with self._lock:
                job.saving = False
        with self._lock:
            job.saved.append(str(path))
            if job.state == DONE:  # the saved file holds all of it now
                self._drop_autosave_locked(job)
        return path


# --- the process-wide manager


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> JobManager:
    """The one JobManager of this process, shared by every browser session.

    KARP_JOB_LIMIT (jobs per device at a time, default 1), KARP_JOB_GRACE (seconds an
    owner's running jobs outlive its last open tab before they are stopped and set aside on
    disk, default 60), KARP_JOBS_PER_SESSION (runs one owner may have waiting or running,
    default 3), KARP_QUEUE_MAX (runs that may wait in all, default 60), KARP_AUTOSAVE_S (seconds
    between autosaves of a running job, default 30), KARP_AUTOSAVE_STEPS (steps between
    autosaves, default 0: by time only; both 0: no autosave at all),
    KARP_AUTOSAVE_KEEP_H (hours a finished run's autosave stays, default 24; a stopped or
    interrupted run's stays 7 times as long) and the quotas (workspace.Quota.from_env)
    configure it. On creation it recovers the runs a previous server left in the runs folder.
    """
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            env = os.environ.get
            keep_h = float(env("KARP_AUTOSAVE_KEEP_H", "24"))
            autosave_s = float(env("KARP_AUTOSAVE_S", "30"))
            steps = int(env("KARP_AUTOSAVE_STEPS", "0"))
            _MANAGER = JobManager(limit=int(env("KARP_JOB_LIMIT", "1")),
                                  grace_s=float(env("KARP_JOB_GRACE", "60")),
                                  max_active_per_session=int(env("KARP_JOBS_PER_SESSION", "3")),
                                  max_queued=int(env("KARP_QUEUE_MAX", "60")),
                                  autosave_s=autosave_s or None, autosave_steps=steps, quota=workspace.Quota.from_env(),
                                  keep_done_s=keep_h * 3600, keep_other_s=7 * keep_h * 3600)
            _MANAGER.recover()
        return _MANAGER
