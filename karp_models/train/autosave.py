"""A training job's state on disk (issue 18): the autosave writer, the jobs a stopped server
left (recovery after a restart), the sweep of old autosaves, and a job written as a saved run (read
back from its autosave when it is on disk only). Used by the job queue
(train/jobs.py), which decides when; this module knows how.

A running job autosaves (model, optimisers, trainer state, records: a karp checkpoint, written
atomically) every `autosave_s` seconds or `autosave_steps` steps, checked at each record (every
10 steps), and when it stops or finishes, into `<runs>/.work/<owner>/autosave/<job>.safetensors`
(train/workspace.py): the trainer waits only while its state is copied; a writer thread encodes
and writes the copy. A job whose owner has no tab open is set aside: its autosave is on disk and
its model leaves memory, and Resume reads it back. `recover()` takes up the autosaves a stopped
server left (a restart, a crash): each is a stopped job at its last autosave, and resuming it
continues the run exactly, as the Trainer's resume through a checkpoint does. Lost work is
bounded by the interval plus one record's steps (bench/bench_autosave.py measures it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from karp_models import device as dev
from karp_models.i18n import _
from karp_models.train import runs, timelapse, workspace
from karp_models.train.checkpoints import CheckpointError, read_trainer_summary, write_checkpoint
from karp_models.train.errors import is_out_of_memory, release_memory
from karp_models.train.jobstatus import ACTIVE, DONE, ERROR, RUNNING, STOPPED, Job, default_label
from karp_models.train.runs import Prepared, RunSpec
from karp_models.train.tasks.base import final_metrics
from karp_models.train.trainer import Record


class Autosaver:
    """Writes and reads back the autosaves of a JobManager's jobs.

    autosave_s / autosave_steps: the interval (None / 0: autosave off); quota: disk limits
    (None: from the environment); keep_done_s / keep_other_s: how long the autosave of a finished
    / a stopped or interrupted run stays after its last write. `lock` is the manager's lock: every
    change to a job's fields is made under it, as the manager's status snapshots read them.
    """

    def __init__(self, lock: threading.RLock, *, runs_dir: Path | None = None,
                 autosave_s: float | None = None, autosave_steps: int = 0,
                 quota: workspace.Quota | None = None, keep_done_s: float = 24 * 3600.0,
                 keep_other_s: float = 7 * 24 * 3600.0):
        self._lock = lock
        self.runs_dir = runs_dir
        self.autosave_s = float(autosave_s) if autosave_s else None
        self.autosave_steps = max(0, int(autosave_steps or 0))
        self.quota = quota
        self.keep_done_s, self.keep_other_s = float(keep_done_s), float(keep_other_s)

    @property
    def enabled(self) -> bool:
        return self.autosave_s is not None or self.autosave_steps > 0

    def assign(self, job: Job) -> None:
        """Give a new job its autosave file (nothing when autosave is off)."""
        if not self.enabled:
            return
        try:
            job.autosave = workspace.autosave_path(job.session_id, job.job_id, self.runs_dir)
        except ValueError as e:  # a runs folder that may not be used: train, but say so
            job.autosave_problem = str(e)

    def start(self, job: Job, step: int) -> None:
        """The job starts (or resumes) training at `step` now: the next autosave is an interval
        from here. Call under the lock."""
        job.autosave_due = time.monotonic() + (self.autosave_s or 0.0)
        job.autosave_step = step

    def due(self, job: Job) -> bool:
        """Is a periodic autosave of this running job due?"""
        if job.autosave is None:
            return False
        if self.autosave_s is not None and time.monotonic() >= job.autosave_due:
            return True
        step = job.prepared.trainer.step
        return bool(self.autosave_steps) and step - job.autosave_step >= self.autosave_steps

    def save(self, job: Job, state: str) -> None:
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
            lapse = kept_timelapse(job)
        t0 = time.perf_counter()
        try:
            parts = runs.run_parts(job.spec, job.prepared, {}, snapshots, job.snapshot_key,
                                   extra={"autosave": info, "spec": runs.spec_meta(job.spec)},
                                   copy=True, timelapse=lapse)
        except Exception as e:  # noqa: BLE001 - an autosave must never stop the training
            with self._lock:
                job.autosave_problem = str(e) or type(e).__name__
            return
        paused_s, step = time.perf_counter() - t0, trainer.step
        with self._lock:
            self.start(job, step)
        args = (job, parts, now, step, paused_s)
        if state == RUNNING:
            job.writer = threading.Thread(target=self.write, args=args, daemon=True,
                                          name=f"karp-autosave-{job.job_id}")
            job.writer.start()
        else:
            self.write(*args)

    def write(self, job: Job, parts: tuple, at: float, step: int, paused_s: float) -> None:
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

    @staticmethod
    def drop(job: Job) -> None:
        """Delete the job's autosave (a removed, failed or saved-and-finished run)."""
        if job.autosave is not None:
            with contextlib.suppress(OSError):
                job.autosave.unlink(missing_ok=True)
        job.autosaved = None

    @staticmethod
    def set_aside(job: Job) -> bool:
        """A job of an owner with no tab open that is neither queued nor running: keep it on
        disk (its model leaves memory) when its autosave is there. False: forget the job."""
        if job.saving:
            return True
        if job.autosaved is not None and job.autosave is not None and job.autosave.is_file():
            if job.prepared is not None:
                job.prepared = None
                job.from_disk = True
            return True
        return job.from_disk

    def write_run(self, job: Job, path: Path, builder: Callable[[RunSpec], Prepared]) -> None:
        """Write a job claimed for saving (claim_for_saving) as a saved run at `path`: read back
        from its autosave first when it is on disk only, evaluated on the whole split unless
        that was done at this step, written by runs.save_run within the quota (a finished run's
        autosave counts as replaced, and is deleted once the run is saved). Raises ValueError
        when out of memory, workspace.QuotaExceeded over a quota (nothing written)."""
        try:
            if job.prepared is None:  # on disk only: read it back from its autosave
                prepared = builder(dataclasses.replace(job.spec, resume_from=str(job.autosave)))
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
                          timelapse=kept_timelapse(job),
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
                self.drop(job)

    # --- after a restart

    def recover(self) -> list[Job]:
        """The jobs a stopped server left, one per valid autosave in the runs folder, on disk
        with their records, as 'stopped' (marked interrupted when it was running) or 'done'.
        Files moved by hand or unreadable are passed over; no runs folder: none."""
        try:
            files = workspace.autosaves(self.runs_dir)
        except (ValueError, OSError):  # no usable runs folder: nothing to recover
            return []
        found = []
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
            found.append(Job(
                job_id=job_id, session_id=owner, spec=spec, device_key=device_key,
                label=str(info.get("label") or default_label(spec)),
                created=float(info.get("created") or 0.0),
                state=DONE if info.get("state") == DONE else STOPPED, records=records,
                autosave=path, autosaved=(float(info.get("time") or 0.0),
                                          int(summary.get("step") or 0)),
                interrupted=info.get("state") in ACTIVE, from_disk=True,
                wall_s=float(info.get("wall_s") or 0.0), saved=list(info.get("saved") or []),
                snapshot_key=key,
                snapshots=[(int(s), np.asarray(w, np.float32))
                           for s, w in zip(snaps.get("steps", []), snaps.get("weights", []))]))
        return found

    def sweep(self, skip: set[Path]) -> set[Path]:
        """Delete old autosaves (workspace.sweep) except those in `skip`; the deleted paths."""
        if not self.enabled:
            return set()
        try:
            return set(workspace.sweep(self.runs_dir, keep_done_s=self.keep_done_s,
                                       keep_other_s=self.keep_other_s, skip=skip))
        except (ValueError, OSError):
            return set()


def kept_timelapse(job: Job) -> timelapse.TimeLapse | None:
    """A copy of the job's time-lapse to write (its snapshots are never changed once kept, so
    the list is copied, not the tensors); before its first preview, the continued run's own
    (Prepared.timelapse); None without one."""
    if job.timelapse:
        return dataclasses.replace(job.timelapse, items=list(job.timelapse.items))
    earlier = job.prepared.timelapse if job.prepared is not None else None
    if earlier and earlier[0]:
        return timelapse.TimeLapse.resume(earlier[0], every=earlier[1] or 1, stride=earlier[1])
    return None


def claim_for_saving(job: Job) -> None:
    """Mark a stopped or finished job as being saved (call under the manager's lock); ValueError
    for a running, failed, never started or already saving one."""
    if job.state in ACTIVE:
        raise ValueError(_("stop the run before saving it (its weights are changing)"))
    if job.state == ERROR or (job.prepared is None and not job.from_disk):
        raise ValueError(_("a run that failed or never started cannot be saved"))
    if job.saving:
        raise ValueError(_("this run is being saved already"))
    job.saving = True


def settings_from_env() -> dict:
    """The app's autosave settings, as Autosaver's keyword arguments: KARP_AUTOSAVE_S (seconds
    between autosaves of a running job, default 30), KARP_AUTOSAVE_STEPS (steps between
    autosaves, default 0: by time only; both 0: no autosave at all), KARP_AUTOSAVE_KEEP_H (hours
    a finished run's autosave stays, default 24; a stopped or interrupted run's stays 7 times as
    long) and the quotas (workspace.Quota.from_env)."""
    env = os.environ.get
    keep_h = float(env("KARP_AUTOSAVE_KEEP_H", "24"))
    return {"autosave_s": float(env("KARP_AUTOSAVE_S", "30")) or None,
            "autosave_steps": int(env("KARP_AUTOSAVE_STEPS", "0")),
            "quota": workspace.Quota.from_env(),
            "keep_done_s": keep_h * 3600, "keep_other_s": 7 * keep_h * 3600}


def report_recovered(jobs: list[Job]) -> None:
    """Say on stderr how many runs a restart found (nothing when none)."""
    if jobs:
        print(f"karp: {len(jobs)} run(s) found in autosaves, {sum(j.interrupted for j in jobs)} "
              f"of them interrupted while training; their owners can resume them on the Train "
              f"page", file=sys.stderr)


def setting(name: str, doc: str) -> property:
    """A JobManager attribute that is its Autosaver's, read and set through the manager."""
    return property(lambda self: getattr(self.autosaver, name),
                    lambda self, value: setattr(self.autosaver, name, value), doc=doc)
