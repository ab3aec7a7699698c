"""The time estimate shown before Start is measured, and it predicts the real run: a job through
the real JobManager takes about what estimate.measure said (the machine is shared, so within a
factor of two, where a guess from the parameter count alone is off by far more)."""
from __future__ import annotations

import dataclasses
import time

from karp_models.train.estimate import Timing, measure
from karp_models.train.jobs import JobManager
from karp_models.train.runs import RunSpec
from karp_models.train.trainer import TrainConfig

SPEC = RunSpec(model="classic", dataset="digits",
               config=TrainConfig(steps=300, batch_size=64, lr=1e-3, eval_every=20, eval_batches=8))


def test_seconds_counts_steps_evaluations_previews_and_building():
    t = Timing(params=10, step_s=0.1, eval_item_s=0.001, preview_s=0.5, build_s=2.0,
               items_per_batch=64, eval_items=1000, preview_every=50, steps_timed=5)
    cfg = TrainConfig(steps=100, batch_size=64, eval_every=20, eval_batches=4)
    # 2 s build + 100 steps * 0.1 + 3 previews * 0.5 + (4 interval evaluations of 256 items
    # + the final one of 1,000) * 0.001
    assert abs(t.seconds(cfg) - (2 + 10 + 1.5 + (4 * 256 + 1000) * 0.001)) < 1e-9
    assert t.seconds(dataclasses.replace(cfg, eval_every=0)) < t.seconds(cfg)


def test_measure_times_real_steps_of_the_chosen_model():
    t = measure(SPEC)
    assert t.params == sum(p.numel() for p in _model_params())
    assert t.steps_timed >= 3 and t.step_s > 0 and t.eval_item_s > 0 and t.preview_s >= 0
    assert t.items_per_batch == 64 and t.eval_items == 360 and t.preview_every == 50
    big = measure(dataclasses.replace(SPEC, config=dataclasses.replace(SPEC.config, batch_size=256)))
    assert big.step_s > t.step_s                        # a bigger batch measures slower steps


def _model_params():
    from karp_models import data
    from karp_models.models import build_for

    return build_for("classic", data.load("digits")).parameters()


def test_the_estimate_predicts_a_real_job():
    estimate = measure(SPEC).seconds(SPEC.config)
    mgr = JobManager(limit=1, grace_s=60, set_threads=False)    # the threads measure() ran with
    try:
        t0 = time.monotonic()
        jid = mgr.submit("s", SPEC)
        status = mgr.wait(jid, timeout=120)
        took = time.monotonic() - t0
    finally:
        mgr.shutdown()
    assert status.state == "done"
    print(f"estimated {estimate:.2f} s, took {status.wall_s:.2f} s")
    assert abs(status.wall_s - took) < 1.0               # the job's own clock, shown on the page
    assert 0.5 < estimate / status.wall_s < 2.0, (estimate, status.wall_s)
