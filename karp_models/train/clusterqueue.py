"""The shared queue of a Ray cluster (issue 26): Queue, the body of the named, detached actor
`karp-queue` (namespace `karp`) that holds the app's JobManager with a RayExecutor, and
RayJobManager, the JobManager look-alike every app server talks to it through (one remote call
with a time limit per action; ClusterUnavailable and the last known job list when it does not
answer). Connecting, the executor and the app's choice are in cluster.py, which re-exports these.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Callable

from karp_models.i18n import language, using
from karp_models.train import runs
from karp_models.train.cluster import (AT_STOP_ONLY, ClusterUnavailable, RayExecutor, _ray, here,
                                       resources, unavailable)
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

    def blob(self, blob: bytes) -> bytes:
        """A call from an app server's client process (karp_models/rayclient.py), which carries
        pickled bytes without reading them: `blob` is (method, args, kwargs) of this actor; the
        answer is ('ok', value) or ('raise', the exception), pickled."""
        method, args, kw = pickle.loads(blob)
        try:
            out = ("ok", getattr(self, method)(*args, **kw))
        except Exception as e:  # noqa: BLE001 - the caller's to raise
            out = ("raise", e)
        try:
            return pickle.dumps(out)
        except Exception as e:  # noqa: BLE001 - a value pickle cannot carry
            return pickle.dumps(("raise", RuntimeError(f"{type(e).__name__}: {e}")))

    def open(self, queue: str, kw: dict) -> dict:
        """Make queue `queue` unless it is there (the first app server's settings hold; `limit`
        None: as many jobs at once as the cluster has GPUs, else CPUs / a job's CPUs); its
        settings."""
        from karp_models.train.jobs import JobManager

        with self.lock:
            if queue not in self.queues:
                kw = dict(kw)
                if "limit" in kw and kw["limit"] is None:  # from the cluster: GPUs, else CPUs / a job's
                    res, cpus = resources(), self.executor.cpus
                    kw["limit"] = int(res["GPU"]) if res["GPU"] >= 1 else max(1, int(res["CPU"] // cpus))
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

    def call(self, queue: str, method: str, *args: Any, _lang: str | None = None, **kw: Any) -> Any:
        """The queue's `method(*args, **kw)`, its messages in the caller's language `_lang`."""
        with using(_lang):
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
    join it as it is; `limit` None: from the cluster's resources). The runs folder is resolved
    here (KARP_RUNS): it must be the same shared folder on every app server and node.
    address: None: calls go to the actor directly from this process, which must be connected
    to Ray (connect(); tests, benches); else the cluster to reach (KARP_RAY_ADDRESS, 'local')
    through a client process (train/clusterlink.py), so this process never imports Ray and
    outlives a cluster that goes away (the app servers); connect_s: how long connecting may take.
    """

    def __init__(self, *, queue: str = "main", timeout_s: float = 5.0, job_cpus: float = 1.0,
                 address: str | None = None, connect_s: float = 20.0, **kw: Any):
        from karp_models.train.clusterlink import DirectLink, make_link

        self.queue, self.timeout_s = queue, float(timeout_s)
        kw["runs_dir"] = runs.runs_dir(kw.get("runs_dir"))
        kw.setdefault("jobs_log", os.environ.get("KARP_JOBS_LOG"))  # the queue's log, on its node
        self.link = (DirectLink(queue, kw, job_cpus) if address is None else
                     make_link(address, queue, kw, job_cpus, connect_s=connect_s))
        s = dict(self.link.settings)
        self._quota = s.pop("quota")
        if s["autosave_steps"] >= AT_STOP_ONLY:  # no periodic autosave: pages say none
            s["autosave_steps"] = 0
        for k, v in s.items():
            setattr(self, k, v)
        self.problem: str | None = None
        self.fail_fast_s, self._down_until, self._down_why = 10.0, 0.0, ""
        self._jobs_cache: dict[str | None, list[JobStatus]] = {}
        self._liveness: Callable[[str], bool | None] | None = None
        self._tabs: dict[str, set[str]] = {}
        self._owners: set[str] = set()
        self._beat_thread: threading.Thread | None = None
        self._closing = threading.Event()

    # --- plumbing

    def _ask(self, method: str, *args: Any, _wait_s: float | None = -1.0, **kw: Any) -> Any:
        """The queue actor's `method`, waiting at most `_wait_s` (-1: timeout_s; None: as long as
        it takes). For `fail_fast_s` after a call found the cluster away, calls are refused at
        once instead of each waiting its time out (pages stay quick while it is down)."""
        if time.monotonic() < self._down_until:
            raise unavailable(self._down_why)
        t = self.timeout_s if _wait_s == -1.0 else _wait_s
        try:
            out = self.link.call(method, (self.queue, *args), kw, t)
        except ClusterUnavailable as e:
            self.problem = str(e)
            self._down_until, self._down_why = time.monotonic() + self.fail_fast_s, e.why
            raise
        self.problem = None
        return out

    def _call(self, method: str, *args: Any, _wait_s: float | None = -1.0, **kw: Any) -> Any:
        """The queue's JobManager `method`, its messages in this caller's language."""
        return self._ask("call", method, *args, _wait_s=_wait_s, _lang=language(), **kw)

    def _later(self, t: float | None) -> float | None:
        return None if t is None else t + self.timeout_s

    # --- the JobManager's methods

    def field(self, job_id: str, name: str) -> Any:
        """One field of a job as the queue keeps it (Queue.field; tests, operators)."""
        return self._ask("field", job_id, name)

    @property
    def running_slots(self) -> int:
        """Jobs the queue counts as running, all devices."""
        return sum(self._ask("get", "_running").values())

    def submit(self, session_id: str, spec: RunSpec) -> str:
        self._owners.add(session_id)
        return self._call("submit", session_id, spec)

    def stop(self, job_id: str, wait: bool = False, timeout: float | None = None,
             owner: str | None = None) -> None:
        self._call("stop", job_id, wait=wait, timeout=timeout, owner=owner,
                   _wait_s=self._later(timeout) if wait else -1.0)

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
        except ClusterUnavailable:  # the last known list, marked as such
            return [dataclasses.replace(j, stale=True) for j in self._jobs_cache.get(session_id, [])]
        self._jobs_cache[session_id] = out
        return out

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        return self._call("wait", job_id, timeout, _wait_s=self._later(timeout))

    def save(self, job_id: str, name: str, *, overwrite: bool = False,
             owner: str | None = None) -> Path:
        return self._call("save", job_id, name, overwrite=overwrite, owner=owner, _wait_s=1800.0)

    def recover(self) -> list[str]:
        return self._call("recover", _wait_s=120.0)

    def sweep(self) -> None:
        self._call("sweep", _wait_s=120.0)

    def reap(self) -> list[str]:
        return self._call("reap")

    def set_limit(self, limit: int) -> None:
        self._call("set_limit", limit)

    @property
    def limit(self) -> int:
        try:
            self._limit = self._ask("get", "limit")
        except ClusterUnavailable:
            pass
        return getattr(self, "_limit", 1)

    @property
    def quota(self) -> Any:
        """The queue's disk limits (workspace.Quota; None: the environment's); settable."""
        return self._quota

    @quota.setter
    def quota(self, value: Any) -> None:
        self._ask("set", "quota", value)
        self._quota = value

    def cluster_resources(self, max_age_s: float = 30.0) -> dict[str, float] | None:
        """The cluster's CPUs, GPUs and alive nodes (cluster.resources), asked at most every
        `max_age_s`; None when it does not answer."""
        t, res = getattr(self, "_resources", (-1e9, None))
        if time.monotonic() - t >= max_age_s:
            try:
                res = self.link.resources()
            except ClusterUnavailable:
                res = None
            self._resources = (time.monotonic(), res)
        return res

    @property
    def autosaving(self) -> bool:
        return self.autosave_s is not None or self.autosave_steps > 0

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop every job of the queue and join them (tests; the cluster's operator), and this
        server's heartbeat thread."""
        self._closing.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout)
        self._call("shutdown", timeout, _wait_s=self._later(timeout))

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop this queue's jobs and remove the queue from the actor (tests)."""
        self._closing.set()
        self._ask("drop", timeout, _wait_s=self._later(timeout))
        self.link.close()

    # --- sessions: this server vouches for its own tabs

    def heartbeat(self, session_id: str) -> None:
        self._owners.add(session_id)
        self.link.cast("heartbeats", (self.queue, [session_id]))  # not waited for

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
                self.link.cast("heartbeats", (self.queue, alive))
