"""Training jobs on a Ray cluster (issue 26): the job queue in a named, detached Ray actor that
every app server shares, each training job a Ray task that asks for the resources it needs and
streams its records, previews and snapshots back to the queue.

The queue is the same JobManager (train/jobs.py: FIFO, per-device limit, per-session limits,
owners, reaper, autosaves), hosted in the actor `karp-queue` of namespace `karp`, with a
RayExecutor in place of the in-process worker thread: a job's stretch of training (from Start or
Resume to its stop, end or failure) is one Ray task (`num_gpus=1` for a GPU job, else
`KARP_RAY_JOB_CPUS` CPUs) running train/worker.run_job on a cluster node. Its condition is a
_Relay: each record and preview the worker announces is pushed to the queue, and the queue's
answer says whether to stop. When the stretch ends, its state is on disk (an autosave is
written at every stop and end), so the task lets its resources go; Resume and Save read the
autosave back, as for a job set aside while its owner had no tab open. The runs folder must be
one folder every node and app server sees (KARP_RUNS on a shared disk).

App servers talk to the queue through RayJobManager, a JobManager look-alike: every call is one
remote call with a time limit, a page never waits on the cluster for long, and a cluster that
went away is a message (ClusterUnavailable) and the last known job list, not a traceback.
Each app server vouches for its own browser tabs (liveness is asked locally, then sent as
heartbeats). Ray (Moritz et al. 2018) is imported only when this backend is chosen. Queue and
RayJobManager live in clusterqueue.py (re-exported here).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

from karp_models import rayclient
from karp_models.i18n import _, using
from karp_models.rayclient import _ray, resources
from karp_models.train import worker
from karp_models.train.autosave import Autosaver
from karp_models.train.jobstatus import ERROR, Job, QueueFull
from karp_models.train.runs import Prepared, RunSpec

if TYPE_CHECKING:
    from karp_models.train.clusterqueue import RayJobManager

AT_STOP_ONLY = 10**12       # autosave_steps that means: only at a stop and at the end
POLL_S = 0.2                # how often a training task asks the queue whether to stop


class ClusterUnavailable(QueueFull):
    """The Ray cluster (or its queue) did not answer in time. A refusal like QueueFull (a
    ValueError), so every page that shows why a run was not started or an action was refused
    shows this too. `why`: the type name of the error behind it ("" when none)."""

    why: str = ""


def unavailable(e: BaseException | str | None = None) -> ClusterUnavailable:
    """The refusal for a cluster that does not answer, in the current language; `e`: the error
    behind it, or its type name."""
    name = e if isinstance(e, str) or e is None else type(e).__name__
    out = ClusterUnavailable(_("The training cluster does not answer{why}; training is paused "
                               "for now. Runs already saved are safe; try again in a minute, or "
                               "ask the person who runs the server.").format(
        why=f" ({name})" if name else ""))
    out.why = name or ""
    return out


# --- connecting (karp_models/rayclient.py, which the light client process shares)


def connect(address: str | None = None, *, timeout_s: float = 20.0, **local: Any) -> None:
    """rayclient.connect (join the cluster at `address`, or start a local one when it is None or
    'local'); raises ClusterUnavailable, in the current language, when it cannot."""
    try:
        rayclient.connect(address, timeout_s=timeout_s, **local)
    except rayclient.Unreachable as e:
        raise unavailable(e.why) from e


def here() -> str:
    """This process on its node, as a job's `where`: 'host (10.0.0.5) pid 4242'."""
    try:
        ip = _ray().util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside a cluster
        ip = "?"
    return f"{socket.gethostname()} ({ip}) pid {os.getpid()}"


# --- a job's stretch of training, on a cluster node


class _Relay(threading.Condition):
    """The worker's condition inside a Ray task: every notify (a record, a preview) pushes what
    changed to the queue, whose answer says whether to stop."""

    def __init__(self, job: Job, queue: Any, token: str):
        super().__init__(threading.RLock())
        self.job, self.queue, self.token = job, queue, token
        self.sent: dict[str, Any] = {"records": (), "snapshots": None}
        self.lost = False

    def delta(self) -> dict:
        """What changed since the last push (call under the lock)."""
        j, s, d = self.job, self.sent, {}
        recs = s["records"]
        if len(j.records) != len(recs) or (recs and j.records[len(recs) - 1] is not recs[-1]):
            if recs and len(j.records) >= len(recs) and j.records[len(recs) - 1] is recs[-1]:
                d["records"] = j.records[len(recs):]
            else:
                d["records_all"] = list(j.records)
            s["records"] = tuple(j.records)
        snaps = tuple(j.snapshots)
        if s["snapshots"] is None or len(snaps) != len(s["snapshots"]) or any(
                a is not b for a, b in zip(snaps, s["snapshots"])):
            d["snapshots"] = list(snaps)
            s["snapshots"] = snaps
        for k in ("preview", "params", "charts", "snapshot_key", "autosaved", "autosave_problem",
                  "last_preview", "where"):
            v = getattr(j, k)
            if k not in s or s[k] is not v:
                d[k] = s[k] = v
        if j.t_run is not None and "running" not in s:        # once a stretch (p_run may be 0.0)
            d["running"] = s["running"] = j.p_run
        return d

    def push(self) -> None:
        with self:
            d = self.delta()
        if not d or self.lost:
            return
        try:
            stop = _ray().get(self.queue.report.remote(self.job.job_id, self.token, d), timeout=60)
        except Exception:  # noqa: BLE001 - the queue is gone: stop (the stop autosaves)
            stop, self.lost = True, True
        if stop:
            self.job.stop_event.set()

    def notify_all(self) -> None:
        super().notify_all()
        self.push()


def _train(payload: dict, builder: Callable[[RunSpec], Prepared], settings: dict, set_threads: bool,
           queue: Any, token: str) -> tuple:
    """A Ray task: train one stretch of a job (worker.run_job) on this node; (state, error,
    error_detail, the last changes, where it ran)."""
    job = Job(**payload)
    job.t_work = time.monotonic()
    job.where = here()
    relay = _Relay(job, queue, token)
    autosaver = Autosaver(relay, **settings)
    done = threading.Event()

    def watch() -> None:  # a stop asked between records
        ray = _ray()
        while not done.wait(POLL_S):
            try:
                if ray.get(queue.stop_requested.remote(job.job_id, token), timeout=30):
                    job.stop_event.set()
            except Exception:  # noqa: BLE001 - the queue is gone
                job.stop_event.set()
    watcher = threading.Thread(target=watch, name="karp-stop-watch", daemon=True)
    watcher.start()
    relay.push()  # where it runs, at once
    try:
        with using(job.language):
            state, error, detail = worker.run_job(job, builder=builder, autosaver=autosaver,
                                                  changed=relay, set_threads=set_threads)
    finally:
        done.set()
    with relay:
        last = relay.delta()
        last["timelapse"] = job.timelapse
    return state, error, detail, last, job.where


FIELDS = ("job_id", "session_id", "spec", "device_key", "label", "created", "records", "language",
          "charts", "autosave", "autosaved", "autosave_problem", "autosave_step", "interrupted",
          "paused", "from_disk", "wall_s", "saved", "snapshots", "snapshot_key", "timelapse",
          "last_preview", "params", "preview")


class RayExecutor:
    """Runs each job's stretch as a Ray task (see the module's docstring); lives in the queue
    actor, whose handle the tasks report to. gpu: the cluster has GPUs (a job that may use one
    asks for one); cpus: CPUs a CPU job asks for."""

    def __init__(self, queue: Any, *, gpu: bool = False, cpus: float = 1.0):
        self.queue, self.gpu, self.cpus = queue, gpu, cpus
        self._live: dict[str, tuple[Job, threading.Condition, str]] = {}

    def device_key(self, spec: RunSpec) -> str:
        if spec.device in (None, "cuda") and self.gpu:
            return "cuda"
        return "cpu" if spec.device in (None, "cuda") else str(spec.device)

    def run(self, job: Job, *, builder: Callable[[RunSpec], Prepared], autosaver: Autosaver,
            changed: threading.Condition, set_threads: bool) -> tuple[str, str | None, str | None]:
        ray = _ray()
        token = uuid.uuid4().hex
        with changed:
            payload = {k: getattr(job, k) for k in FIELDS}
            payload["records"], payload["snapshots"] = list(job.records), list(job.snapshots)
            payload["saved"] = list(job.saved)
            # a job with an autosave continues from it (its model is not kept in this process)
            payload["from_disk"] = bool(job.records) and job.autosave is not None and job.autosave.is_file()
            self._live[job.job_id] = (job, changed, token)
        settings = {"runs_dir": autosaver.runs_dir, "autosave_s": autosaver.autosave_s,
                    "autosave_steps": autosaver.autosave_steps, "quota": autosaver.quota,
                    "keep_done_s": autosaver.keep_done_s, "keep_other_s": autosaver.keep_other_s}
        opts: dict[str, Any] = {"max_retries": 0, "num_cpus": self.cpus}
        if job.device_key == "cuda":
            opts.update(num_gpus=1, num_cpus=1)
        try:
            ref = _remote_train().options(**opts).remote(payload, builder, settings, set_threads,
                                                         self.queue, token)
            state, error, detail, last, where = ray.get(ref)
            with changed:
                self._apply(job, last)
                job.timelapse = last.get("timelapse", job.timelapse)
                job.where = where
        except Exception as e:  # noqa: BLE001 - the node or its process went away
            state, detail = ERROR, f"{type(e).__name__}: {e}"
            with using(job.language):   # the message its owner reads, in their language
                error = _("The process training this run on {where} stopped unexpectedly (it was "
                          "killed, ran out of memory, or its machine left the cluster). Runs already "
                          "saved are safe; Resume continues from the last autosave when there is "
                          "one.").format(where=job.where or _("a cluster node"))
        finally:
            with changed:
                self._live.pop(job.job_id, None)
        with changed:
            job.prepared = None   # it lived in the task; its state is in the autosave
            job.from_disk = job.autosave is not None and job.autosave.is_file()
            if not job.from_disk:
                job.autosaved = None
        return state, error, detail

    # called by the queue actor's report / stop_requested (threads of the actor)

    def report(self, job_id: str, token: str, d: dict) -> bool:
        live = self._live.get(job_id)
        if live is None or live[2] != token:
            return True  # a stale task: stop it
        job, changed, _token = live
        with changed:
            self._apply(job, d)
            changed.notify_all()
            return job.stop_event.is_set()

    def stop_requested(self, job_id: str, token: str) -> bool:
        live = self._live.get(job_id)
        return live is None or live[2] != token or live[0].stop_event.is_set()

    @staticmethod
    def _apply(job: Job, d: dict) -> None:
        if "records_all" in d:
            job.records[:] = d["records_all"]
        job.records.extend(d.get("records", ()))
        if d.get("records") and any(r.final for r in d["records"]):
            job.final_metrics = None
        if "snapshots" in d:
            job.snapshots[:] = d["snapshots"]
        for k in ("preview", "params", "charts", "snapshot_key", "autosaved", "autosave_problem",
                  "last_preview", "where"):
            if k in d:
                setattr(job, k, d[k])
        if "running" in d:
            job.t_run, job.p_run = time.monotonic(), d["running"]


_REMOTE: dict[str, Any] = {}


def _remote_train():
    if "train" not in _REMOTE:
        _REMOTE["train"] = _ray().remote(_train)
    return _REMOTE["train"]


# --- the app's choice


def __getattr__(name: str) -> Any:
    """The shared queue's classes (clusterqueue.py, which imports this module) by their old names."""
    if name in ("Queue", "RayJobManager"):
        from karp_models.train import clusterqueue

        return getattr(clusterqueue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def manager_from_env(**kw: Any) -> RayJobManager:
    """The app's queue on the cluster KARP_RAY_ADDRESS ('local': start one), reached through a
    client process (train/clusterlink.py), with the JobManager keywords `kw`; KARP_JOB_LIMIT
    unset: as many jobs at once as the cluster has GPUs, else CPUs / KARP_RAY_JOB_CPUS. Raises
    ClusterUnavailable."""
    from karp_models.train.clusterqueue import RayJobManager

    env = os.environ.get
    if not env("KARP_JOB_LIMIT"):
        kw["limit"] = None
    m = RayJobManager(timeout_s=float(env("KARP_RAY_TIMEOUT", "5")),
                      job_cpus=float(env("KARP_RAY_JOB_CPUS", "1")),
                      address=env("KARP_RAY_ADDRESS") or "local",
                      connect_s=float(env("KARP_RAY_CONNECT_S", "20")), **kw)
    m.recover()
    return m


def describe() -> dict[str, float] | None:
    """The cluster's resources when this process's queue is a cluster's (or this process is
    connected to one), else None; None too when it does not answer."""
    from karp_models.train import jobs

    m = jobs._MANAGER
    if m is not None and hasattr(m, "cluster_resources"):
        return m.cluster_resources()
    if "ray" not in sys.modules or not _ray().is_initialized():
        return None
    try:
        return resources()
    except Exception:  # noqa: BLE001 - gone away
        return None


def backend() -> tuple[str, str | None]:
    """Where this server's training jobs run, and what is wrong, in the current language:
    ('ray', None) on a cluster, ('ray', why) when it stopped answering, ('process', None) here,
    ('process', why) when the configured cluster could not be reached at start."""
    from karp_models.train import jobs

    m = jobs._MANAGER
    if m is not None and not isinstance(m, jobs.JobManager):
        return "ray", (_("The training cluster does not answer; runs cannot start or stop until "
                         "it is back. Runs already saved are safe.") if m.problem else None)
    if jobs.BACKEND_PROBLEM:
        return "process", _("The training cluster at {address} could not be reached when this "
                            "server started, so training runs on this server; runs the cluster "
                            "was training wait on disk for it.").format(
            address=jobs.BACKEND_PROBLEM)
    return "process", None
