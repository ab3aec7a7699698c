"""The shared queue of a Ray cluster (issue 26): Queue, the body of the named, detached actor
`karp-queue` (namespace `karp`) that holds the app's JobManager with a RayExecutor, and
RayJobManager, the JobManager look-alike every app server talks to it through (one remote call
with a time limit per action; ClusterUnavailable and the last known job list when it does not
answer). Connecting, the executor and the app's choice are in cluster.py, which re-exports these.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

from karp_models.train import runs
from karp_models.train.cluster import (AT_STOP_ONLY, NAMESPACE, QUEUE_NAME, ClusterUnavailable, RayExecutor,
                                       _ray, here, resources, unavailable)
from karp_models.train.jobstatus import JobStatus
from karp_models.train.runs import RunSpec


class Queue:
    """The body of the actor `karp-queue`: the app's job queue, a JobManager whose jobs train as
    Ray tasks (RayExecutor), under the name "main"; tests open more queues beside it (one
    actor process: a fresh queue costs no process start). kw: the JobManager's keywords (the
    runs folder an absolute path every node sees); autosave off becomes autosave at every stop
    and end only (a job's state must outlive its task)."""

    def __init__(self, gpu: bool, cpus: float):
        ray = _ray()
        self.executor = RayExecutor(ray.get_runtime_context().current_actor, gpu=gpu, cpus=cpus)
        self.queues: dict[str, Any] = {}
        self.lock = threading.Lock()

    def open(self, queue: str, kw: dict) -> dict:
        """Make queue `queue` unless it is there (the first app server's settings hold); its
        settings."""
        from karp_models.train.jobs import JobManager

        with self.lock:
            if queue not in self.queues:
                kw = dict(kw)
                if not kw.get("autosave_s") and not kw.get("autosave_steps"):
                    kw["autosave_steps"] = AT_STOP_ONLY
                log = kw.pop("jobs_log", None)
                self.queues[queue] = JobManager(executor=self.executor, **kw)
                self.queues[queue].jobs_log = log
            m = self.queues[queue]
        a = m.autosaver
        return {"autosave_s": a.autosave_s, "autosave_steps": a.autosave_steps,
                "keep_done_s": a.keep_done_s, "keep_other_s": a.keep_other_s, "quota": a.quota,
                "runs_dir": m.runs_dir, "grace_s": m.grace_s, "where": here()}

    def drop(self, queue: str, timeout: float | None = 30.0) -> None:
        """Stop queue `queue`'s jobs and forget it (tests)."""
        with self.lock:
            m = self.queues.pop(queue, None)
        if m is not None:
            m.shutdown(timeout)

    def call(self, queue: str, method: str, *args: Any, **kw: Any) -> Any:
        return getattr(self.queues[queue], method)(*args, **kw)

    def get(self, queue: str, name: str) -> Any:
        return getattr(self.queues[queue], name)

    def set(self, queue: str, name: str, value: Any) -> None:
        setattr(self.queues[queue], name, value)

    def field(self, queue: str, job_id: str, name: str) -> Any:
        """One field of a job as the queue keeps it (train/jobstatus.Job; tests, operators)."""
        job = self.queues[queue]._jobs[job_id]
        if name == "prepared":  # a model lives in a task, never here, except one being saved
            return None if job.prepared is None else "in memory"
        return getattr(job, name)

    def heartbeats(self, queue: str, owners: list[str]) -> None:
        m = self.queues.get(queue)
        for o in owners if m is not None else ():
            m.heartbeat(o)

    def report(self, job_id: str, token: str, d: dict) -> bool:
        return self.executor.report(job_id, token, d)

    def stop_requested(self, job_id: str, token: str) -> bool:
        return self.executor.stop_requested(job_id, token)


class RayJobManager:
    """The JobManager of an app server whose queue is the cluster's (the actor `name`): the same
    public methods, each one remote call that waits at most `timeout_s` (a wait, a stop with
    wait=True and a save wait as long as they are asked to). A cluster that does not answer is
    ClusterUnavailable for an action, and the last known list for jobs(); `problem` says why.
    queue: which queue of the actor (the app's is "main").

    kw: JobManager's keywords, used by the first app server that creates the queue (the others
    join it as it is). The runs folder is resolved here (KARP_RUNS): it must be the same shared
    folder on every app server and node. Ray must be connected (connect()).
    """

    def __init__(self, *, queue: str = "main", timeout_s: float = 5.0, job_cpus: float = 1.0,
                 **kw: Any):
        ray = _ray()
        self.queue, self.timeout_s = queue, float(timeout_s)
        kw["runs_dir"] = runs.runs_dir(kw.get("runs_dir"))
        kw.setdefault("jobs_log", os.environ.get("KARP_JOBS_LOG"))  # the queue's log, on its node
        gpu = resources()["GPU"] > 0
        self.actor = ray.remote(Queue).options(
            name=QUEUE_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, max_concurrency=1000, max_restarts=0,
            resources={"node:__internal_head__": 0.001}).remote(gpu, job_cpus)
        s = self._get(self.actor.open.remote(queue, kw), 120.0)
        self._quota = s.pop("quota")
        if s["autosave_steps"] >= AT_STOP_ONLY:  # no periodic autosave: pages say none
            s["autosave_steps"] = 0
        for k, v in s.items():
            setattr(self, k, v)
        self.problem: str | None = None
        self._jobs_cache: dict[str | None, list[JobStatus]] = {}
        self._liveness: Callable[[str], bool | None] | None = None
        self._tabs: dict[str, set[str]] = {}
        self._owners: set[str] = set()
        self._beat_thread: threading.Thread | None = None
        self._closing = threading.Event()

    # --- plumbing

    def _get(self, ref: Any, timeout: float | None) -> Any:
        ray = _ray()
        try:
            out = ray.get(ref, timeout=timeout)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
                raise cause from None
            self.problem = str(unavailable(e))
            raise unavailable(e) from e
        except (ray.exceptions.RayError, TimeoutError) as e:
            self.problem = str(unavailable(e))
            raise unavailable(e) from e
        self.problem = None
        return out

    def _call(self, method: str, *args: Any, timeout: float | None = -1.0, **kw: Any) -> Any:
        t = self.timeout_s if timeout == -1.0 else timeout
        return self._get(self.actor.call.remote(self.queue, method, *args, **kw), t)

    def _later(self, t: float | None) -> float | None:
        return None if t is None else t + self.timeout_s

    # --- the JobManager's methods

    def field(self, job_id: str, name: str) -> Any:
        """One field of a job as the queue keeps it (Queue.field; tests, operators)."""
        return self._get(self.actor.field.remote(self.queue, job_id, name), self.timeout_s)

    @property
    def running_slots(self) -> int:
        """Jobs the queue counts as running, all devices."""
        return sum(self._get(self.actor.get.remote(self.queue, "_running"), self.timeout_s).values())

    def submit(self, session_id: str, spec: RunSpec) -> str:
        self._owners.add(session_id)
        return self._call("submit", session_id, spec)

    def stop(self, job_id: str, wait: bool = False, timeout: float | None = None,
             owner: str | None = None) -> None:
        self._get(self.actor.call.remote(self.queue, "stop", job_id, wait=wait, timeout=timeout, owner=owner),
                  self._later(timeout) if wait else self.timeout_s)

    def resume(self, job_id: str, owner: str | None = None) -> None:
        self._call("resume", job_id, owner=owner)

    def remove(self, job_id: str, owner: str | None = None) -> None:
        self._call("remove", job_id, owner=owner)

    def status(self, job_id: str, owner: str | None = None) -> JobStatus:
        return self._call("status", job_id, owner=owner)

    def jobs(self, session_id: str | None = None) -> list[JobStatus]:
        """Snapshots of an owner's jobs; the last known ones when the cluster does not answer."""
        try:
            out = self._call("jobs", session_id)
        except ClusterUnavailable:
            return self._jobs_cache.get(session_id, [])
        self._jobs_cache[session_id] = out
        return out

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        return self._get(self.actor.call.remote(self.queue, "wait", job_id, timeout), self._later(timeout))

    def save(self, job_id: str, name: str, *, overwrite: bool = False,
             owner: str | None = None) -> Path:
        return self._get(self.actor.call.remote(self.queue, "save", job_id, name, overwrite=overwrite,
                                                owner=owner), 1800.0)

    def recover(self) -> list[str]:
        return self._call("recover", timeout=120.0)

    def sweep(self) -> None:
        self._call("sweep", timeout=120.0)

    def reap(self) -> list[str]:
        return self._call("reap")

    def set_limit(self, limit: int) -> None:
        self._call("set_limit", limit)

    @property
    def limit(self) -> int:
        try:
            self._limit = self._get(self.actor.get.remote(self.queue, "limit"), self.timeout_s)
        except ClusterUnavailable:
            pass
        return getattr(self, "_limit", 1)

    @property
    def quota(self) -> Any:
        """The queue's disk limits (workspace.Quota; None: the environment's); settable."""
        return self._quota

    @quota.setter
    def quota(self, value: Any) -> None:
        self._get(self.actor.set.remote(self.queue, "quota", value), self.timeout_s)
        self._quota = value

    @property
    def autosaving(self) -> bool:
        return self.autosave_s is not None or self.autosave_steps > 0

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop every job of the queue and join them (tests; the cluster's operator), and this
        server's heartbeat thread."""
        self._closing.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout)
        self._get(self.actor.call.remote(self.queue, "shutdown", timeout), self._later(timeout))

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop this queue's jobs and remove the queue from the actor (tests)."""
        self._closing.set()
        self._get(self.actor.drop.remote(self.queue, timeout), self._later(timeout))

    # --- sessions: this server vouches for its own tabs

    def heartbeat(self, session_id: str) -> None:
        self._owners.add(session_id)
        try:  # not waited for: a page never blocks on it
            self.actor.heartbeats.remote(self.queue, [session_id])
        except Exception:  # noqa: BLE001 - the cluster is away; the page says so elsewhere
            pass

    def note_tab(self, owner: str, tab: str) -> None:
        self._owners.add(owner)
        self._tabs.setdefault(owner, set()).add(tab)

    def set_liveness(self, fn: Callable[[str], bool | None] | None) -> None:
        self._liveness = fn
        if fn is not None and (self._beat_thread is None or not self._beat_thread.is_alive()):
            self._closing.clear()
            self._beat_thread = threading.Thread(target=self._beat_loop, daemon=True,
                                                 name="karp-ray-liveness")
            self._beat_thread.start()

    def _beat_loop(self) -> None:
        every = max(0.05, min(self.grace_s / 4, 5.0))
        while not self._closing.wait(every):
            fn, alive = self._liveness, []
            if fn is None:
                continue
            for owner in list(self._owners):
                for tab in list(self._tabs.get(owner) or {owner}):
                    try:
                        ok = fn(tab)
                    except Exception:  # noqa: BLE001 - a failing probe must not stop the loop
                        ok = None
                    if ok:
                        alive.append(owner)
                        break
                    if ok is False and tab in self._tabs.get(owner, ()):
                        self._tabs[owner].discard(tab)
            if alive:
                try:
                    self.actor.heartbeats.remote(self.queue, alive)
                except Exception:  # noqa: BLE001 - the cluster is away; the page says so
                    pass
