"""The training server of tests/train/test_persist.py, as a separate process the test kills with
SIGKILL: a JobManager that autosaves every few steps, training one real run (the fast CNN on the
bundled digits) for an owner until it is killed.

    python persist_child.py RUNS_DIR OWNER STEPS AUTOSAVE_STEPS [HANG_AT_WRITE]

Prints 'job <id>' once the run is queued. With HANG_AT_WRITE=n, the n-th autosave writes half of
its file, prints 'half', flushes, and hangs there (the test kills it in the middle of that write).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from karp_models.train import checkpoints  # noqa: E402
from karp_models.train.jobs import JobManager  # noqa: E402
from karp_models.train.runs import RunSpec  # noqa: E402
from karp_models.train.trainer import TrainConfig  # noqa: E402


def spec(steps: int) -> RunSpec:
    """The run the test kills and resumes, and its uninterrupted reference."""
    return RunSpec(model="fast", dataset="digits", device="cpu", preview_every=10**9,
                   config=TrainConfig(steps=steps, batch_size=32, eval_every=20, eval_batches=1))


def hang_at_write(n: int) -> None:
    """The n-th checkpoint write stops halfway through its temporary file and waits to be
    killed (checkpoints' own `os` is wrapped: nothing else in the process is touched)."""
    count = [0]

    class Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return self.f.__exit__(*a)

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            print("half", flush=True)
            time.sleep(600)

    class Os:
        def __getattr__(self, name):
            return getattr(os, name)

        def fdopen(self, fd, *a, **k):
            count[0] += 1
            f = os.fdopen(fd, *a, **k)
            return Half(f) if count[0] == n else f

    checkpoints.os = Os()


def main(argv: list[str]) -> None:
    root, owner, steps, every = argv[0], argv[1], int(argv[2]), int(argv[3])
    torch.set_num_threads(1)
    if len(argv) > 4:
        hang_at_write(int(argv[4]))
    m = JobManager(runs_dir=root, set_threads=False, autosave_steps=every, grace_s=3600)
    jid = m.submit(owner, spec(steps))
    print(f"job {jid}", flush=True)
    m.wait(jid)
    print("finished", flush=True)  # the test kills the process long before this
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1:])
