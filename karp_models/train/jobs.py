"""Background training jobs for the app: a process-wide FIFO queue of worker threads with stop,
resume, thread-safe status snapshots, live previews, saving runs, and a reaper for closed tabs.

Follows Streamlit's multithreading guide (option 1): worker threads never call `st.*`; pages poll
`status()` snapshots from an `st.fragment(run_every=...)`. Nothing here imports streamlit, so the
same jobs run from a notebook or a test. The live text sample is min-char-rnn's "print a sample
every few hundred steps" (Karpathy, 2015).

Threads: `torch.set_num_threads` sets a process-wide default that a thread adopts at its first
parallel op; with OpenMP a thread that already ran one keeps its own count. So each worker sets
it once, first thing, on its own thread with `device.set_threads(for_app=True)` (one core stays
free for the Streamlit server on small machines; KARP_THREADS overrides), which also changes the
default for threads started later. The global RNG is process-wide: a fresh job seeds it as the
CLI does, and previews sample inside `torch.random.fork_rng` so they do not shift it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
import time
import traceback
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from karp_models import device as dev
from karp_models.train.trainer import Record, TrainConfig

QUEUED, RUNNING, STOPPED, DONE, ERROR = "queued", "running", "stopped", "done", "error"
ACTIVE = (QUEUED, RUNNING)
GRID = 16  # test images in the live prediction grid (4 x 4)
SAMPLE_CHARS = 240  # characters in a live text sample

# --- what to run, and what a page sees


@dataclass(frozen=True)
class JobSpec:
    """One training run: registry model name, dataset name, preset and a TrainConfig.

    overrides: model config fields (as for build_for). resume_from: a checkpoint saved with its
    trainer state (a saved run) to continue instead of starting fresh. preview_every: steps
    between live previews (None: 200 for text, 50 for images). label: the run's name on charts.
    """

    model: str
    dataset: str
    config: TrainConfig
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume_from: str | None = None
    device: str | None = None
    preview_every: int | None = None
    label: str = ""


@dataclass(frozen=True)
class TextSample:
    step: int
    text: str


@dataclass(frozen=True)
class Predictions:
    """The model's current guesses on a fixed grid of test images."""

    step: int
    images: np.ndarray  # (16, C, H, W) uint8
    labels: tuple[int, ...]
    preds: tuple[int, ...]
    confidence: tuple[float, ...]  # softmax probability of the predicted class
    classes: tuple[str, ...]

    @property
    def correct(self) -> int:
        return sum(p == y for p, y in zip(self.preds, self.labels))


@dataclass(frozen=True)
class JobStatus:
    """A consistent copy of one job, safe to read from any thread while the job runs.

    progress is the fraction of the budget used (0..1); eta_s is wall-clock seconds left
    (None until it can be estimated); throughput is `unit`s (samples or tokens) per second;
    queue_position counts from 1 among jobs waiting for the same device.
    """

    job_id: str
    session_id: str
    label: str
    spec: JobSpec
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
    sample: TextSample | None
    predictions: Predictions | None
    task: str | None  # 'image' | 'text', known once the job has started
    params: int | None
    device: str
    created: float
    saved: tuple[str, ...]
    filters: tuple[tuple[int, np.ndarray], ...] = ()  # (step, first conv weights (O, C, kh, kw))

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last(self) -> Record | None:
        return self.records[-1] if self.records else None


class QueueFull(ValueError):
    """A run was refused: its session has enough active runs, or the queue is full."""


# --- preparing a run (the default builder; tests pass their own)


@dataclass
class Prepared:
    """What a worker trains: the Trainer (model, task, cfg, device inside) and the dataset."""

    trainer: Any
    data: Any
    task_kind: str  # 'image' | 'text'
    preset: str | None = None


def build_job(spec: JobSpec) -> Prepared:
    """Load the data, build the model and its task, and a Trainer (resumed from a saved run)."""
    from karp_models import data as datasets
    from karp_models.models import REGISTRY, build_for, from_config
    from karp_models.train.checkpoints import check_checkpoint, load_trainer_state, read_metadata
    from karp_models.train.tasks import make_task
    from karp_models.train.trainer import Trainer

    if spec.model not in REGISTRY:
        raise ValueError(f"unknown model {spec.model!r}; choose from {', '.join(REGISTRY)}")
    reg = REGISTRY[spec.model]
    ds = datasets.load(spec.dataset)
    if (reg.task == "text") != hasattr(ds, "vocab"):
        raise ValueError(f"{spec.model} is a {reg.task} model and {spec.dataset} is not "
                         f"a {reg.task} dataset")
    device = dev.pick_device(spec.device)
    torch.manual_seed(spec.config.seed)  # as the CLI: initial weights follow the seed
    if spec.resume_from:
        check_checkpoint(spec.resume_from)  # a forged config must not allocate a giant model
        meta = read_metadata(spec.resume_from)
        model = from_config(spec.model, meta["config"]).to(device)
    else:
        model = build_for(spec.model, ds, preset=spec.preset, **spec.overrides).to(device)
    task = make_task(ds, model, augment=spec.config.augment, shift=spec.config.shift)
    trainer = Trainer(model, task, spec.config, device)
    if spec.resume_from:
        load_trainer_state(spec.resume_from, trainer)
    return Prepared(trainer=trainer, data=ds, task_kind=reg.task,
                    preset=spec.preset or reg.default_preset)


class _PromptStop:
    """A task whose last evaluation after a stop uses the interval subset (the same items as the
    curve's other validation points, a fraction of a second) instead of the whole split (up to
    a minute on a CPU), so Stop is prompt. Saving a run evaluates the whole split."""

    def __init__(self, task: Any, stopping: Callable[[], bool], cfg: TrainConfig):
        self._task, self._stopping, self._cfg = task, stopping, cfg

    def evaluate(self, model: torch.nn.Module, device: Any = None, **kw: Any) -> dict:
        if kw.get("max_batches") is None and self._stopping():
            kw["max_batches"] = self._cfg.eval_batches or 4
            kw.setdefault("batch_size", self._cfg.batch_size)
        return self._task.evaluate(model, device, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


# --- the job record (private; pages see JobStatus)


@dataclass(eq=False)
class _Job:
    job_id: str
    session_id: str
    spec: JobSpec
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
    sample: TextSample | None = None
    predictions: Predictions | None = None
    grid: tuple[torch.Tensor, torch.Tensor] | None = None  # fixed test images and labels
    last_preview: int = -1
    t_run: float | None = None  # wall clock and progress when this stretch of running began
    p_run: float = 0.0
    params: int | None = None
    saving: bool = False
    saved: list[str] = field(default_factory=list)
    final_metrics: tuple[int, dict] | None = None  # (step, metrics) of the last full evaluation
    filters: list[tuple[int, np.ndarray]] = field(default_factory=list)  # first conv weights per preview


MAX_FILTER_SNAPSHOTS = 200  # first-layer weight snapshots kept per job (thinned evenly beyond)


def _first_conv_weight(model: torch.nn.Module) -> np.ndarray | None:
    """A copy of the first Conv2d's weights (O, C, kh, kw) float32, for the Predict page's
    filter evolution; None for models without one."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.weight.detach().float().cpu().numpy().copy()
    return None


def filters_meta(filters: list[tuple[int, np.ndarray]], max_values: int = 65536) -> dict:
    """Weight snapshots as JSON for a saved run's metadata: at most 32 evenly spaced (fewer for
    big layers, about max_values numbers in all), 4 decimals."""
    keep = max(2, min(32, max_values // max(1, filters[-1][1].size)))
    idx = np.unique(np.linspace(0, len(filters) - 1, min(keep, len(filters))).round().astype(int))
    return {"steps": [int(filters[i][0]) for i in idx],
            "weights": [np.round(filters[i][1], 4).tolist() for i in idx]}


def _throughput(recs: tuple[Record, ...]) -> float:
    """The latest interval's rate (a final record covers only the steps after the last one)."""
    for r in reversed(recs):
        if not r.final and r.throughput:
            return r.throughput
    return recs[-1].throughput if recs else 0.0


def _default_label(spec: JobSpec) -> str:
    c = spec.config
    preset = f" {spec.preset}" if spec.preset and spec.preset != spec.model else ""
    parts = [spec.model + preset, f"lr {c.lr:g}",
             f"batch {c.batch_size}"]
    if c.optimizer != "adamw":
        parts.append(c.optimizer)
    return " · ".join(parts)


# --- the manager


class JobManager:
    """Runs training jobs in worker threads, at most `limit` at a time per device, FIFO.

    Jobs belong to a session id. A session is alive while it sent a heartbeat within `grace_s`
    seconds or the optional liveness callback says so; a reaper thread (alive only while jobs
    are queued or running) stops the jobs of sessions that are not. Every public method is
    thread-safe and returns quickly, except save() (it evaluates on the whole split) and
    stop(wait=True) / wait() / shutdown(), which join.
    """

    def __init__(self, *, limit: int = 1, grace_s: float = 60.0,
                 builder: Callable[[JobSpec], Prepared] = build_job,
                 runs_dir: str | os.PathLike | None = None, keep_per_session: int = 12,
                 set_threads: bool = True, max_active_per_session: int = 3,
                 max_queued: int = 60):
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
        self._jobs: dict[str, _Job] = {}  # insertion order = submission order
        self._queue: list[_Job] = []
        self._running: dict[str, int] = {}  # device key -> running jobs
        self._beats: dict[str, float] = {}
        self._counts: dict[str, int] = {}  # runs submitted per session, for default labels
        self._reaped: set[str] = set()
        self._liveness: Callable[[str], bool | None] | None = None
        self._reaper: threading.Thread | None = None

    # --- sessions

    def heartbeat(self, session_id: str) -> None:
        """The page is open: keep this session's jobs alive for another grace period."""
        with self._lock:
            self._beats[session_id] = time.monotonic()
            self._reaped.discard(session_id)

    def set_liveness(self, fn: Callable[[str], bool | None] | None) -> None:
        """fn(session_id) -> True while the browser tab is connected (None: unknown).

        The app passes Streamlit's runtime check, so a person reading another page keeps
        their jobs; the heartbeat alone covers the Train page.
        """
        with self._lock:
            self._liveness = fn

    def _alive(self, session_id: str, now: float) -> bool:
        beat = self._beats.get(session_id)
        if beat is not None and now - beat <= self.grace_s:
            return True
        if self._liveness is not None:
            try:
                if self._liveness(session_id):
                    self._beats[session_id] = now  # a connected tab counts as a heartbeat
                    return True
            except Exception:  # a failing probe must not kill the reaper
                pass
        return False

    def reap(self) -> list[str]:
        """Stop the queued and running jobs of sessions that are no longer alive; their ids."""
        now = time.monotonic()
        stopped = []
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state in ACTIVE and not self._alive(job.session_id, now):
                    self._reaped.add(job.session_id)
                    self._stop_locked(job)
                    stopped.append(job.job_id)
            for job in list(self._jobs.values()):  # nobody will look at these again
                if job.session_id in self._reaped and job.state not in ACTIVE:
                    del self._jobs[job.job_id]
            left = {j.session_id for j in self._jobs.values()}
            for sid in [s for s in self._beats if s not in left and not self._alive(s, now)]:
                self._beats.pop(sid, None)
                self._counts.pop(sid, None)
                self._reaped.discard(sid)
        return stopped

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

    def submit(self, session_id: str, spec: JobSpec) -> str:
        """Queue a run for this session; it starts when its device has a free slot. Its id."""
        device_key = dev.pick_device(spec.device).type
        with self._lock:
            n = self._counts[session_id] = self._counts.get(session_id, 0) + 1
        job = _Job(job_id=uuid.uuid4().hex[:10], session_id=session_id, spec=spec,
                   device_key=device_key, label=spec.label or f"#{n} {_default_label(spec)}",
                   created=time.time())
        with self._lock:
            self._check_room_locked(session_id)
            self._beats.setdefault(session_id, time.monotonic())
            self._reaped.discard(session_id)
            self._forget_old_locked(session_id)
            self._jobs[job.job_id] = job
            self._queue.append(job)
            self._log_locked("submit", job)
            self._dispatch_locked()
            self._ensure_reaper_locked()
            self._changed.notify_all()
        return job.job_id

    def stop(self, job_id: str, wait: bool = False, timeout: float | None = None) -> None:
        """Ask a job to stop. A queued job leaves the queue at once; a running one stops before
        its next step, after a last evaluation. wait=True joins its thread."""
        with self._lock:
            job = self._get(job_id)
            self._stop_locked(job)
            thread = job.thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _stop_locked(self, job: _Job) -> None:
        if job.state == QUEUED:
            self._queue.remove(job)
            job.state = STOPPED
            self._changed.notify_all()
        elif job.state == RUNNING:
            job.stop_event.set()

    def resume(self, job_id: str) -> None:
        """Queue a stopped job again; it continues from its trainer's in-memory state."""
        with self._lock:
            job = self._get(job_id)
            if job.state != STOPPED:
                raise ValueError(f"only a stopped job can be resumed; this one is {job.state}")
            if job.saving:
                raise ValueError("the run is being saved; resume it when that is done")
            self._check_room_locked(job.session_id)
            job.stop_event = threading.Event()
            job.state = QUEUED
            self._reaped.discard(job.session_id)
            self._beats[job.session_id] = time.monotonic()
            self._queue.append(job)
            self._dispatch_locked()
            self._ensure_reaper_locked()
            self._changed.notify_all()

    def remove(self, job_id: str) -> None:
        """Forget a job that is not queued or running (frees its model and optimizer)."""
        with self._lock:
            job = self._get(job_id)
            if job.state in ACTIVE or job.saving:
                raise ValueError("stop the job before removing it")
            del self._jobs[job_id]

    def _log_locked(self, event: str, job: _Job) -> None:
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
            raise QueueFull(f"you already have {mine} runs waiting or running; stop one of them "
                            f"before starting another")
        if len(self._queue) >= self.max_queued:
            raise QueueFull(f"the training queue is full ({len(self._queue)} runs waiting); "
                            f"try again when some have finished")

    def _forget_old_locked(self, session_id: str) -> None:
        mine = [j for j in self._jobs.values() if j.session_id == session_id]
        for j in mine[:max(0, len(mine) - self.keep_per_session + 1)]:
            if j.state not in ACTIVE and not j.saving:
                del self._jobs[j.job_id]

    def _get(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job {job_id!r} (finished jobs of closed sessions are "
                           f"forgotten)") from None

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

    def _work(self, job: _Job) -> None:
        """The worker thread: build if needed, train, keep previews; never touches Streamlit."""
        state, error, detail = DONE, None, None
        try:
            self._ensure_threads()
            if job.prepared is None:
                prepared = self.builder(job.spec)
                with self._lock:
                    job.prepared = prepared
                    job.params = sum(t.numel() for t in prepared.trainer.model.parameters())
                    job.records.extend(getattr(prepared.trainer, "history", []) or [])
            trainer = job.prepared.trainer
            if not isinstance(trainer.task, _PromptStop):
                trainer.task = _PromptStop(trainer.task, lambda: job.stop_event.is_set(),
                                           trainer.cfg)
            if job.stop_event.is_set():  # stopped while loading: no last evaluation needed
                state = STOPPED
                return
            with self._lock:
                job.t_run = time.monotonic()
                job.p_run = job.records[-1].progress if job.records else 0.0
            self._preview(job, force=True)
            for rec in trainer.run(stop=job.stop_event):
                with self._lock:
                    job.records.append(rec)
                    if rec.final:
                        job.final_metrics = None  # the model changed since any cached eval
                    self._changed.notify_all()
                self._preview(job, force=rec.final)
            if job.stop_event.is_set() and not trainer.done():
                state = STOPPED
        except BaseException as e:  # noqa: BLE001 - the error is shown on the page
            state = ERROR
            error = explain_error(e, job.spec)
            detail = traceback.format_exc()
        finally:
            if state == ERROR:  # a failed run cannot be saved or resumed: free its memory now
                with self._lock:
                    job.prepared, job.grid = None, None
                _release_memory()
            with self._lock:
                job.state, job.error, job.error_detail = state, error, detail
                job.t_run = None
                self._running[job.device_key] -= 1
                self._log_locked(state, job)
                if job.session_id in self._reaped:
                    self._jobs.pop(job.job_id, None)
                self._dispatch_locked()
                self._changed.notify_all()

    # --- previews (run on the worker thread between records, while the trainer is paused)

    def _preview(self, job: _Job, force: bool = False) -> None:
        p = job.prepared
        step = getattr(p.trainer, "step", 0)
        every = job.spec.preview_every or (200 if p.task_kind == "text" else 50)
        if not force and job.last_preview >= 0 and step - job.last_preview < every:
            return
        job.last_preview = step
        model = p.trainer.model
        was_training = model.training
        model.eval()
        try:
            # fork_rng: sampling must not shift the training RNG (so runs match the CLI's)
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(1000 + step)
                if p.task_kind == "text":
                    out = TextSample(step, self._sample_text(model, p.data, p.trainer.device))
                    with self._lock:
                        job.sample = out
                else:
                    out = self._predict_grid(job, model, p.data, p.trainer.device, step)
                    w = _first_conv_weight(model)
                    with self._lock:
                        job.predictions = out
                        if w is not None and (not job.filters or job.filters[-1][0] != step):
                            job.filters.append((step, w))
                            if len(job.filters) > MAX_FILTER_SNAPSHOTS:
                                del job.filters[1::2]  # thin evenly; the first and last stay
        except Exception as e:  # a preview that fails must not stop the training
            if p.task_kind == "text":
                with self._lock:
                    job.sample = TextSample(step, f"(no sample: {type(e).__name__}: {e})")
        finally:
            model.train(was_training)

    @staticmethod
    def _sample_text(model: torch.nn.Module, ds: Any, device: torch.device) -> str:
        start = ds.encode("\n") if "\n" in ds.vocab else [int(ds.val_ids[0])]
        idx = torch.tensor([start[:1]], dtype=torch.long, device=device)  # (1, 1)
        out = model.generate(idx, max_new_tokens=SAMPLE_CHARS, temperature=1.0)  # (1, 1+N)
        return ds.decode(out[0, 1:].tolist())

    @staticmethod
    def _predict_grid(job: _Job, model: torch.nn.Module, ds: Any, device: torch.device,
                      step: int) -> Predictions:
        if job.grid is None:
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(len(ds.test_y), generator=g)[:GRID]
            job.grid = (ds.test_x[idx].clone(), ds.test_y[idx].clone())
        x, y = job.grid  # (16, C, H, W) uint8, (16,)
        logits, _ = model(x.to(device).float() / 255)  # (16, n_classes)
        prob = torch.softmax(logits.float(), dim=-1).cpu()
        conf, pred = prob.max(dim=-1)
        return Predictions(step=step, images=x.numpy(), labels=tuple(y.tolist()),
                           preds=tuple(pred.tolist()), confidence=tuple(conf.tolist()),
                           classes=tuple(ds.classes))

    # --- status

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            return self._snapshot(self._get(job_id))

    def jobs(self, session_id: str | None = None) -> list[JobStatus]:
        """Snapshots of a session's jobs (all jobs when None), oldest first."""
        with self._lock:
            return [self._snapshot(j) for j in self._jobs.values()
                    if session_id is None or j.session_id == session_id]

    def _snapshot(self, job: _Job) -> JobStatus:
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
            same = [j for j in self._queue if j.device_key == job.device_key]
            qpos = same.index(job) + 1
        p = job.prepared
        return JobStatus(
            job_id=job.job_id, session_id=job.session_id, label=job.label, spec=job.spec,
            state=job.state, records=recs, step=last.step if last else 0,
            total_steps=job.spec.config.steps, progress=progress, eta_s=eta,
            throughput=_throughput(recs), unit=last.unit if last else "",
            queue_position=qpos, stop_requested=job.stop_event.is_set() and job.state == RUNNING,
            error=job.error, error_detail=job.error_detail, sample=job.sample,
            predictions=job.predictions, task=p.task_kind if p else None, params=job.params,
            device=job.device_key, created=job.created, saved=tuple(job.saved),
            filters=tuple(job.filters))

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
            snap = self._snapshot(job)
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

    def save(self, job_id: str, name: str, *, overwrite: bool = False) -> Path:
        """Save a stopped or finished run under `name` in the runs folder; the file's path.

        Runs on the caller's thread (seconds: it evaluates on the whole split). Raises
        ValueError for a bad name or a running/failed job, FileExistsError for a taken name.

        The file is a karp checkpoint with the CLI's metadata (dataset, classes or vocab,
        metrics on the whole test/validation split, train facts) plus the trainer state, so
        every view can open it and training can continue from it.
        """
        from karp_models.train.checkpoints import save_checkpoint

        path = run_path(name, self.runs_dir)
        if path.exists() and not overwrite:
            raise FileExistsError(f"a run named {path.stem!r} already exists in {path.parent}")
        with self._lock:
            job = self._get(job_id)
            if job.state in ACTIVE:
                raise ValueError("stop the run before saving it (its weights are changing)")
            if job.state == ERROR or job.prepared is None:
                raise ValueError("a run that failed or never started cannot be saved")
            if job.saving:
                raise ValueError("this run is being saved already")
            job.saving = True
        try:
            p, spec = job.prepared, job.spec
            trainer, model = p.trainer, p.trainer.model
            try:
                metrics = self._final_metrics(job)
            except (MemoryError, RuntimeError) as e:
                if not is_out_of_memory(e):
                    raise
                _release_memory()
                raise ValueError("out of memory while evaluating the run for saving; nothing "
                                 "was written. Close other runs, then save again.") from e
            meta = run_metadata(spec, p, metrics)
            if job.filters:
                meta["filter_evolution"] = filters_meta(job.filters)
            save_checkpoint(path, model, model_name=spec.model, meta=meta, trainer=trainer)
        finally:
            with self._lock:
                job.saving = False
        with self._lock:
            job.saved.append(str(path))
        return path

    def _final_metrics(self, job: _Job) -> dict:
        trainer = job.prepared.trainer
        if job.final_metrics is not None and job.final_metrics[0] == trainer.step:
            return job.final_metrics[1]
        text = job.prepared.task_kind == "text"
        task = getattr(trainer.task, "_task", trainer.task)  # the whole split, never the subset
        m = task.evaluate(trainer.model, trainer.device, split="validation" if text else "test")
        metrics = ({"val_loss": m["loss"], "val_accuracy": m["accuracy"]} if text
                   else {"test_loss": m["loss"], "test_accuracy": m["accuracy"]})
        job.final_metrics = (trainer.step, metrics)
        return metrics


# --- errors in words


_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory",
              "defaultcpuallocator", "not enough memory")


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA's torch.OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if isinstance(e, MemoryError) or (oom is not None and isinstance(e, oom)):
        return True
    return isinstance(e, RuntimeError) and any(w in str(e).lower() for w in _OOM_WORDS)


def explain_error(e: BaseException, spec: JobSpec | None = None) -> str:
    """One clear line for the page: what failed and what to do; the traceback goes to details."""
    full = "".join(traceback.format_exception_only(type(e), e)).strip() or type(e).__name__
    raw = full.splitlines()[0]
    if is_out_of_memory(e):
        where = "the GPU" if "cuda" in str(e).lower() or type(e).__name__ == "OutOfMemoryError" \
            else "this machine"
        batch = f" with batch size {spec.config.batch_size:,}" if spec is not None else ""
        return (f"Out of memory on {where}{batch}: try a smaller batch size or a smaller preset. "
                f"The app, other runs and saved files are unaffected. ({raw[:200]})")
    if isinstance(e, OSError) and getattr(e, "errno", None) in (28, 122):  # ENOSPC, EDQUOT
        return f"The disk is full: free some space and start again. ({raw[:200]})"
    return full


def _release_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- runs folder


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Where saved runs go: `path`, else $KARP_RUNS, else ./runs (never inside weights/)."""
    from karp_models.cli import WEIGHTS_DIR

    root = Path(path or os.environ.get("KARP_RUNS") or "runs").expanduser().resolve()
    weights = WEIGHTS_DIR.resolve()
    if root == weights or weights in root.parents:
        raise ValueError(f"the runs folder {root} must be outside {weights} (shipped weights)")
    return root


def safe_run_name(name: str, max_len: int = 80) -> str:
    """A file stem made from a person's run name that cannot leave the runs folder.

    Unicode is normalised (NFKC, so full-width '．．／' becomes '../' first); anything but
    letters, digits, '_', '.' and '-' becomes '-'; runs of separators collapse; leading and trailing
    dots and dashes go. Raises ValueError when nothing is left.
    """
    s = unicodedata.normalize("NFKC", str(name)).strip()
    s = re.sub(r"\.safetensors$", "", s, flags=re.IGNORECASE)
    s = re.sub(r"[^\w.-]+", "-", s)
    s = re.sub(r"[-.]*-[-.]*", "-", s)  # separators around a dash: one dash
    s = re.sub(r"\.{2,}", ".", s).strip("._-")[:max_len].strip("._-")
    if not s:
        raise ValueError(f"{name!r} is not usable as a run name: use letters, digits, - or _")
    return s


def run_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """runs_dir(root) / <safe name>.safetensors, checked to lie directly in that folder."""
    base = runs_dir(root)
    path = (base / f"{safe_run_name(name)}.safetensors").resolve()
    if path.parent != base:
        raise ValueError(f"{name!r} would leave the runs folder")
    return path


def list_runs(root: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """(path, metadata) of every saved run, newest first; unreadable files are skipped."""
    from karp_models.train.checkpoints import CheckpointError, read_metadata

    base = runs_dir(root)
    _sweep_temporaries(base)
    out = []
    for p in sorted(base.glob("*.safetensors"), key=lambda q: q.stat().st_mtime, reverse=True):
        try:
            if p.is_symlink() and p.resolve().parent != base:  # planted, pointing elsewhere
                continue
            out.append((p, read_metadata(p)))
        except (CheckpointError, OSError):  # unreadable, or deleted by someone meanwhile
            continue
    return out


STALE_TEMP_S = 3600.0


def _sweep_temporaries(base: Path, older_than_s: float = STALE_TEMP_S) -> None:
    """Remove what a save killed midway left behind (its `.<name>.safetensors.*.tmp` file);
    the run it was replacing is intact, since the write is atomic. Only old ones: a younger
    one may be a save in progress."""
    now = time.time()
    for t in base.glob(".*.safetensors.*.tmp"):
        try:
            if now - t.stat().st_mtime > older_than_s:
                t.unlink()
        except OSError:
            pass


def delete_run(name: str, root: str | os.PathLike | None = None) -> Path:
    """Delete the saved run `<name>.safetensors` from the runs folder; its former path.

    Only a regular file directly in that folder: a name with a path in it, a symlink (say, to a
    shipped weights file) or anything else is refused with ValueError.
    """
    base = runs_dir(root)
    stem = str(name)
    path = base / f"{stem}.safetensors"
    if (Path(stem).name != stem or stem in ("", ".", "..") or path.is_symlink()
            or not path.is_file() or path.resolve().parent != base):
        raise ValueError(f"no saved run named {stem!r} in {base}")
    path.unlink()
    return path


def run_metadata(spec: JobSpec, prepared: Prepared, metrics: dict) -> dict:
    """The metadata the CLI's `train` writes, for a run trained in the app."""
    trainer, ds = prepared.trainer, prepared.data
    last = trainer.history[-1] if getattr(trainer, "history", None) else None
    n_params = sum(p.numel() for p in trainer.model.parameters())
    meta = {
        "dataset": spec.dataset,
        "dataset_source": getattr(ds, "source", ""),
        "metrics": metrics,
        "train": {
            "steps": trainer.step, "epochs": round(last.epoch, 3) if last else 0,
            "time_s": round(float(trainer.elapsed), 1), "device": dev.describe_device(trainer.device),
            "threads": torch.get_num_threads(), "params": n_params, "preset": prepared.preset,
            "config": dataclasses.asdict(trainer.cfg), "torch": torch.__version__,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "command": cli_command(spec),
        },
    }
    if prepared.task_kind == "text":
        meta["vocab"] = list(ds.vocab)
    else:
        meta["classes"] = list(ds.classes)
    return meta


def cli_command(spec: JobSpec) -> str:
    """The `python -m karp_models train` command that makes the same run (trained in the app)."""
    import json
    import shlex

    c, d = spec.config, TrainConfig(steps=1)
    args = ["train", "--model", spec.model, "--dataset", spec.dataset]
    if spec.preset:
        args += ["--preset", spec.preset]
    if spec.overrides:
        args += ["--config", json.dumps(spec.overrides)]
    if c.steps is not None:
        args += ["--steps", str(c.steps)]
    if c.minutes is not None:
        args += ["--minutes", f"{c.minutes:g}"]
    flags = {"batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
             "schedule": "--schedule", "weight_decay": "--weight-decay", "warmup": "--warmup",
             "grad_clip": "--grad-clip", "label_smoothing": "--label-smoothing", "shift": "--shift",
             "eval_every": "--eval-every", "seed": "--seed"}
    for k, flag in flags.items():
        if getattr(c, k) != getattr(d, k):
            args += [flag, f"{getattr(c, k):g}" if isinstance(getattr(c, k), float) else str(getattr(c, k))]
    if not c.augment:
        args.append("--no-augment")
    return "python -m karp_models " + shlex.join(args) + "  # trained in the app"


def spec_from_run(path: str | os.PathLike, **config_changes: Any) -> JobSpec:
    """A JobSpec that continues a saved run (its model, dataset, preset and TrainConfig).

    config_changes: TrainConfig fields to change, e.g. steps=2000 to train further.
    """
    from karp_models.train.checkpoints import read_metadata

    meta = read_metadata(path)
    tr = meta.get("train", {})
    cfg = TrainConfig(**{**tr.get("config", {}), **config_changes})
    return JobSpec(model=meta["model"], dataset=meta["dataset"], config=cfg,
                   preset=tr.get("preset"), resume_from=str(path),
                   label=f"{Path(path).stem} (continued)")


# --- the process-wide manager


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> JobManager:
    """The one JobManager of this process, shared by every browser session.

    KARP_JOB_LIMIT (jobs per device at a time, default 1), KARP_JOB_GRACE (seconds a
    session's jobs outlive its last sign of life, default 60), KARP_JOBS_PER_SESSION (runs one
    tab may have waiting or running, default 3) and KARP_QUEUE_MAX (runs that may wait in all,
    default 60) configure it.
    """
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager(limit=int(os.environ.get("KARP_JOB_LIMIT", "1")),
                                  grace_s=float(os.environ.get("KARP_JOB_GRACE", "60")),
                                  max_active_per_session=int(
                                      os.environ.get("KARP_JOBS_PER_SESSION", "3")),
                                  max_queued=int(os.environ.get("KARP_QUEUE_MAX", "60")))
        return _MANAGER
