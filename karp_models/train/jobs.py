"""The training queue of the app: a process-wide FIFO of worker threads with stop, resume,
thread-safe status snapshots, live previews, saving, and a reaper for owners with no open tab.

Jobs belong to an owner: the anonymous work identity of a browser (ui/identity.py), so a
refreshed or reopened tab finds them again and no other browser sees them. A running job
autosaves at an interval, and when it stops or finishes (train/autosave.py: the writer, and the
recovery of the jobs a stopped server left). A job whose owner has no tab open is stopped after
the grace period and, when its autosave is on disk, kept there: its model leaves memory, and
Resume reads it back.

It knows no model family: a job is a RunSpec, built by runs.build_run into a Trainer whose Task
makes the previews (train/previews.py). Follows Streamlit's multithreading guide (option 1):
worker threads never call `st.*`; pages poll `status()` snapshots from an
`st.fragment(run_every=...)`. Nothing here imports streamlit, so the same jobs run from a
notebook or a test.

Threads and the global RNG on a worker: see train/worker.py.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from karp_models.i18n import _, language, using
from karp_models.train import autosave, runs, worker, workspace
from karp_models.train.autosave import Autosaver, setting
from karp_models.train.jobstatus import (ACTIVE, ERROR, QUEUED, RUNNING, STOPPED, JobStatus,
                                         QueueFull, Job, default_label, snapshot)
from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.sessions import Sessions

# --- the manager


class JobManager:
    """Runs training jobs in worker threads, at most `limit` at a time per device, FIFO.

    Jobs belong to an owner (the `session_id` argument: a browser's work identity, any string in
    tests). An owner is alive while it sent a heartbeat within `grace_s` seconds or the optional
    liveness callback says so; a reaper thread (alive only while jobs are queued or running)
    stops the jobs of owners that are not, and keeps them on disk when they have an autosave.
    autosave_s, autosave_steps, quota, keep_done_s, keep_other_s: the autosaves' interval,
    disk limits (also for saved runs) and how long they stay (train/autosave.Autosaver, whose
    settings the manager shows as its own attributes). The builder must honour
    RunSpec.resume_from (runs.build_run does): that is how a job on disk is read back. Every public method is thread-safe and returns
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
                 keep_other_s: float = 7 * 24 * 3600.0, executor: worker.Executor | None = None):
        self.limit = max(1, int(limit))
        self.executor = executor or worker.InProcess()
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
        self.autosaver = Autosaver(self._lock, runs_dir=self.runs_dir, autosave_s=autosave_s,
                                   autosave_steps=autosave_steps, quota=quota,
                                   keep_done_s=keep_done_s, keep_other_s=keep_other_s)

    autosave_s = setting("autosave_s", "Seconds between autosaves (None: by steps only).")
    autosave_steps = setting("autosave_steps", "Steps between autosaves (0: by time only).")
    quota = setting("quota", "Disk limits for autosaves and saved runs (None: the environment's).")
    keep_done_s = setting("keep_done_s", "Seconds a finished run's autosave stays.")
    keep_other_s = setting("keep_other_s", "Seconds a stopped or interrupted run's autosave stays.")
    jobs_log: str | None = None  # the event log's file (None: KARP_JOBS_LOG's)

    running_slots = property(lambda self: sum(self._running.values()), doc="Jobs running, all devices.")

    @property
    def autosaving(self) -> bool:
        return self.autosaver.enabled

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
        if not self.autosaver.set_aside(job):
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
        device_key = self.executor.device_key(spec)
        with self._lock:
            n = self._sessions.next_count(session_id)
        job = Job(job_id=uuid.uuid4().hex[:10], session_id=session_id, spec=spec,
                   device_key=device_key, label=spec.label or f"#{n} {default_label(spec)}",
                   created=time.time(), language=language())
        self.autosaver.assign(job)
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
            self.autosaver.drop(job)

    def _log_locked(self, event: str, job: Job) -> None:
        """With KARP_JOBS_LOG=<file>, one line per event: time, event, job, device, running on that
        device, queue length after it (and where it ran, on a cluster): what the load test reads."""
        if not (path := self.jobs_log or os.environ.get("KARP_JOBS_LOG")):
            return
        where = f" {job.where.replace(' ', '_')}" if job.where else ""  # a cluster's node and pid
        try:
            with open(path, "a") as f:
                f.write(f"{time.time():.3f} {event} {job.job_id} {job.device_key} "
                        f"{self._running.get(job.device_key, 0)} {len(self._queue)}{where}\n")
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
                self.autosaver.drop(j)

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

    def _work(self, job: Job) -> None:
        """The worker thread (train/worker.run_job), then the queue's books: its slot, the next
        job. Its words (an error, a preview's) are in the language of the session that started it."""
        with self._lock:
            job.t_work = time.monotonic()
        with using(job.language):
            state, error, detail = self.executor.run(job, builder=self.builder,
                                                     autosaver=self.autosaver, changed=self._changed,
                                                     set_threads=self._set_threads)
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

    # --- after a restart

    def recover(self) -> list[str]:
        """Take up the runs a stopped server (a restart, a crash, a killed process) left: one
        job per autosave that no job of this manager holds (Autosaver.recover). Their owners
        find them again; resuming continues from the autosave. Old autosaves are swept first.
        Returns the recovered jobs' ids, oldest first, and says on stderr what it found."""
        self.sweep()
        found = []
        for job in self.autosaver.recover():
            with self._lock:
                if job.job_id in self._jobs:
                    continue
                self._jobs[job.job_id] = job
                self._sessions.next_count(job.session_id)
            found.append(job)
        autosave.report_recovered(found)
        return [j.job_id for j in found]

    def sweep(self) -> None:
        """Delete old autosaves (workspace.sweep) except those of jobs in memory or in use, and
        forget the jobs on disk whose autosave went."""
        with self._lock:
            skip = {j.autosave for j in self._jobs.values() if j.autosave is not None
                    and (not j.from_disk or j.state in ACTIVE or j.saving)}
        removed = self.autosaver.sweep(skip)
        with self._lock:
            for j in list(self._jobs.values()):
                if j.autosave in removed and j.from_disk and j.state not in ACTIVE:
                    del self._jobs[j.job_id]

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
            autosave.claim_for_saving(job)
        self.autosaver.write_run(job, path, self.builder)
        return path


# --- the process-wide manager


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()
BACKEND_PROBLEM: str | None = None   # the KARP_RAY_ADDRESS that could not be reached (jobs run here)


def get_manager() -> JobManager:
    """The one JobManager of this process, shared by every browser session.

    KARP_JOB_LIMIT (jobs per device at a time, default 1), KARP_JOB_GRACE (seconds an
    owner's running jobs outlive its last open tab before they are stopped and set aside on
    disk, default 60), KARP_JOBS_PER_SESSION (runs one owner may have waiting or running,
    default 3), KARP_QUEUE_MAX (runs that may wait in all, default 60) and the autosave
    settings (autosave.settings_from_env) configure it. On creation it recovers the runs a previous server left in the runs folder.
    With KARP_RAY_ADDRESS it is a Ray cluster's shared queue (train/cluster.RayJobManager); an
    unreachable cluster leaves jobs in this process (cluster.backend() says so)."""
    global _MANAGER, BACKEND_PROBLEM
    with _MANAGER_LOCK:
        if _MANAGER is None:
            env = os.environ.get
            kw = dict(limit=int(env("KARP_JOB_LIMIT", "1")),
                      grace_s=float(env("KARP_JOB_GRACE", "60")),
                      max_active_per_session=int(env("KARP_JOBS_PER_SESSION", "3")),
                      max_queued=int(env("KARP_QUEUE_MAX", "60")),
                      **autosave.settings_from_env())
            if env("KARP_RAY_ADDRESS"):  # a Ray cluster (train/cluster.py); ray imported only then
                from karp_models.train import cluster
                try:
                    _MANAGER = cluster.manager_from_env(**kw)
                    return _MANAGER
                except cluster.ClusterUnavailable as e:
                    BACKEND_PROBLEM = env("KARP_RAY_ADDRESS")
                    print(f"karp: {BACKEND_PROBLEM} unreachable ({e.why}); training runs in this process", file=sys.stderr)
            _MANAGER = JobManager(**kw)
            if BACKEND_PROBLEM is None:  # else the shared folder's interrupted runs are the cluster's
                _MANAGER.recover()
        return _MANAGER
