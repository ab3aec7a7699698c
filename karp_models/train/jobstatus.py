"""A job as the queue keeps it (private) and as a page sees it: a JobStatus snapshot, plain frozen
data that is safe to read from any thread while the job runs."""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.trainer import Record

QUEUED, RUNNING, STOPPED, DONE, ERROR = "queued", "running", "stopped", "done", "error"
ACTIVE = (QUEUED, RUNNING)

# --- what a page sees


@dataclass(frozen=True)
class JobStatus:
    """A consistent copy of one job, safe to read from any thread while the job runs.

    progress is the fraction of the budget used (0..1); eta_s is wall-clock seconds left
    (None until it can be estimated); throughput is `unit`s (samples or tokens) per second;
    queue_position counts from 1 among jobs waiting for the same device. preview is the task's
    latest (train/previews.py); snapshots are (step, array) kept over the run (a CNN's first
    conv weights, a generator's grids), saved under snapshot_key; charts: the task's named
    curves (previews.Chart), empty until the run is built or for a task without them.
    """

    job_id: str
    session_id: str            # its owner: a browser's work identity (ui/identity.py)
    label: str
    spec: RunSpec
    state: str
    records: tuple[Record, ...]
    step: int
    total_steps: int | None
    progress: float
    eta_s: float | None
    throughput: float
    unit: str
    queue_position: int | None
    stop_requested: bool
    error: str | None
    error_detail: str | None
    preview: Any
    params: int | None
    device: str
    created: float
    saved: tuple[str, ...]
    snapshots: tuple[tuple[int, np.ndarray], ...] = ()
    wall_s: float = 0.0        # seconds on the clock the job has worked (building it included)
    snapshot_key: str = "snapshots"
    charts: tuple[Any, ...] = ()
    autosaved_at: float | None = None   # time.time() of the last autosave on disk
    autosaved_step: int | None = None   # the step it holds
    autosave_problem: str | None = None  # why the last autosave was not written (quota, disk)
    interrupted: bool = False  # recovered from an autosave written while it ran: the server stopped
    paused: bool = False       # stopped because no tab of its owner was open
    on_disk: bool = False      # kept on disk only (model not in memory): resuming reads the autosave
    timelapse: tuple[tuple[int, dict], ...] = ()  # whole-model snapshots so far (train/timelapse.py)
    model_config: dict | None = None   # the model's config (dataclasses.asdict): a twin to replay them in
    where: str = ""            # the cluster node and process it last trained on ("": this process)
    stale: bool = False        # the last known state: the cluster does not answer (clusterqueue.py)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last(self) -> Record | None:
        return self.records[-1] if self.records else None


class QueueFull(ValueError):
    """A run was refused: its session has enough active runs, or the queue is full."""


# --- the job as the queue keeps it (pages see JobStatus)


@dataclass(eq=False)
class Job:
    job_id: str
    session_id: str
    spec: RunSpec
    device_key: str
    label: str
    created: float
    state: str = QUEUED
    records: list[Record] = field(default_factory=list)
    prepared: Prepared | None = None
    thread: threading.Thread | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    error_detail: str | None = None
    preview: Any = None
    last_preview: int = -1
    t_run: float | None = None  # wall clock and progress when this stretch of running began
    p_run: float = 0.0
    t_work: float | None = None  # wall clock when the worker took the job up (building included)
    wall_s: float = 0.0          # seconds of finished stretches of work
    params: int | None = None
    saving: bool = False
    saved: list[str] = field(default_factory=list)
    final_metrics: tuple[int, dict] | None = None  # (step, metrics) of the last full evaluation
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    snapshot_key: str = "snapshots"  # the metadata entry they are saved under
    timelapse: Any = None            # whole-model snapshots, if its task keeps them (train/timelapse.py)
    language: str = "en"             # its words' language: the session's that started it
    charts: tuple[Any, ...] = ()     # the task's named curves (previews.Chart)
    autosave: Path | None = None     # its autosave file (None: autosave is off)
    autosaved: tuple[float, int] | None = None  # (time.time(), step) of the autosave on disk
    autosave_problem: str | None = None
    autosave_due: float = 0.0        # time.monotonic() when the next autosave is due
    autosave_step: int = 0           # the step of the last autosave (for a step interval)
    autosave_costs: list[tuple[float, float]] = field(default_factory=list)  # per autosave:
    # seconds the training waited (the snapshot), seconds the writer took (encode, write, fsync)
    writer: threading.Thread | None = None  # the thread writing the latest autosave
    interrupted: bool = False
    paused: bool = False
    from_disk: bool = False          # `prepared` must be rebuilt from the autosave
    where: str = ""                  # the cluster node and process it last trained on (train/cluster.py)


def _throughput(recs: tuple[Record, ...]) -> float:
    """The latest interval's rate (a final record covers only the steps after the last one)."""
    for r in reversed(recs):
        if not r.final and r.throughput:
            return r.throughput
    return recs[-1].throughput if recs else 0.0


def default_label(spec: RunSpec) -> str:
    c = spec.config
    preset = f" {spec.preset}" if spec.preset and spec.preset != spec.model else ""
    parts = [spec.model + preset, f"lr {c.lr:g}", f"batch {c.batch_size}"]
    if c.optimizer != "adamw":
        parts.append(c.optimizer)
    # what tells runs apart on one chart when only their augmentation or attack differs
    if not c.augment:
        parts.append("no augment")
    elif c.shift == 0 or not c.flip:
        parts.append("no " + " or ".join(w for w, off in (("shift", c.shift == 0), ("flip", not c.flip))
                                         if off))
    if c.adv_eps > 0:
        parts.append(f"PGD ε {c.adv_eps:g}")
    return " · ".join(parts)


def snapshot(job: Job, queue: list[Job]) -> JobStatus:
    """A JobStatus of `job` (the manager holds its lock); queue: the jobs waiting, in order."""
    recs = tuple(job.records)  # Records are frozen: a shallow copy is a consistent copy
    last = recs[-1] if recs else None
    progress = last.progress if last else 0.0
    if job.state == DONE:
        progress = 1.0
    eta = None
    if job.state == RUNNING and job.t_run is not None and last is not None:
        dp = progress - job.p_run
        if dp > 0:
            eta = max(0.0, (time.monotonic() - job.t_run) * (1 - progress) / dp)
    qpos = None
    if job.state == QUEUED:
        same = [j for j in queue if j.device_key == job.device_key]
        qpos = same.index(job) + 1
    return JobStatus(
        job_id=job.job_id, session_id=job.session_id, label=job.label, spec=job.spec,
        state=job.state, records=recs, step=last.step if last else 0,
        total_steps=job.spec.config.steps, progress=progress, eta_s=eta,
        throughput=_throughput(recs), unit=last.unit if last else "",
        queue_position=qpos, stop_requested=job.stop_event.is_set() and job.state == RUNNING,
        error=job.error, error_detail=job.error_detail, preview=job.preview,
        params=job.params, device=job.device_key, created=job.created,
        saved=tuple(job.saved), snapshots=tuple(job.snapshots), snapshot_key=job.snapshot_key,
        charts=job.charts,
        wall_s=job.wall_s + (time.monotonic() - job.t_work if job.t_work is not None else 0.0),
        autosaved_at=job.autosaved[0] if job.autosaved else None,
        autosaved_step=job.autosaved[1] if job.autosaved else None,
        autosave_problem=job.autosave_problem, interrupted=job.interrupted, paused=job.paused,
        on_disk=job.from_disk and job.prepared is None, where=job.where,
        timelapse=tuple(job.timelapse.items) if job.timelapse else (),
        model_config=_config(job))


def _config(job: Job) -> dict | None:
    """The job's model config as a dict (models.from_config rebuilds it), None before it is built."""
    cfg = getattr(getattr(job.prepared, "trainer", None), "model", None)
    cfg = getattr(cfg, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None
