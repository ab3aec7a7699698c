"""The training time-lapse: which steps are kept, their exact weights, saved and reloaded with
the run, and the run file still opening as a model."""
import dataclasses

import pytest
import torch
from torch import nn

from karp_models.train import timelapse as tl
from karp_models.train.jobs import JobManager
from karp_models.train.runs import RunSpec
from karp_models.train.trainer import TrainConfig


def _model(value: float) -> nn.Module:
    m = nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_steps_stay_evenly_spaced_and_the_last_is_kept():
    lapse = tl.TimeLapse(every=5, max_items=4)
    for step in range(0, 101, 5):
        lapse.offer(step, _model(step))
    # 21 previews: the stride doubled 5 -> 10 -> 20 -> 40 to keep <= 3 on the grid
    assert lapse.stride == 40 and lapse.steps == [0, 40, 80]
    assert lapse.offer(103, _model(103), last=True) and lapse.steps == [0, 40, 80, 103]
    assert [float(sd["weight"][0, 0]) for _s, sd in lapse.items] == [0, 40, 80, 103]
    lapse.offer(110, _model(110))               # training went on: 103 was not the last after all
    assert lapse.steps == [0, 40, 80]
    assert not lapse.offer(80, _model(0))       # a step already kept is not replaced


def test_snapshots_are_copies_not_views():
    m = _model(1.0)
    lapse = tl.TimeLapse(every=1)
    lapse.offer(0, m)
    with torch.no_grad():
        m.weight.fill_(2.0)
    assert float(lapse.items[0][1]["weight"][0, 0]) == 1.0


def test_capacity_follows_the_byte_budget():
    m = nn.Linear(100, 100)                     # 10,100 numbers, 40,400 bytes
    assert tl.capacity(m) == tl.MAX_ITEMS
    assert tl.capacity(m, max_bytes=5 * 40_400) == 5
    assert tl.capacity(m, max_bytes=40_400) == 0  # fewer than 2 is no time-lapse
    with pytest.raises(ValueError):
        tl.TimeLapse(every=0)


def test_an_image_run_keeps_saves_and_reloads_exact_snapshots(tmp_path):
    from karp_models.train.checkpoints import load_checkpoint, read_metadata

    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False)
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(steps=70, batch_size=32, eval_every=10, eval_batches=1)
        jid = m.submit("s1", RunSpec(model="fast", dataset="digits", config=cfg, preview_every=5))
        st = m.wait(jid, timeout=60)
        assert st.state == "done", st.error
        path = m.save(jid, "lapse")
        job = m._jobs[jid]
        # previews every 5 steps: 15 on the grid is more than 11, so every 10th step
        assert job.timelapse.steps == [0, 10, 20, 30, 40, 50, 60, 70]
        kept = job.timelapse.items
    finally:
        m.shutdown()
        torch.set_num_threads(threads)
    assert read_metadata(path)["timelapse"] == {"steps": [0, 10, 20, 30, 40, 50, 60, 70], "stride": 5}
    loaded = tl.load(path)
    assert [s for s, _ in loaded] == [0, 10, 20, 30, 40, 50, 60, 70]
    for (_s, a), (_t, b) in zip(kept, loaded):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    final = load_checkpoint(path).model            # the run still opens, strictly, as a model
    assert all(torch.equal(v, loaded[-1][1][k]) for k, v in final.state_dict().items())
    first_conv = next(k for k in loaded[0][1] if k.endswith("weight"))
    assert not torch.equal(loaded[0][1][first_conv], loaded[-1][1][first_conv])  # it did train


def test_a_run_without_a_time_lapse_loads_none(tmp_path):
    from karp_models.models.registry import build
    from karp_models.train.checkpoints import save_checkpoint

    p = save_checkpoint(tmp_path / "m.safetensors", build("fast"), model_name="fast",
                        meta={"dataset": "digits"})
    assert tl.load(p) == []


def test_a_forged_time_lapse_is_a_checkpoint_error(tmp_path):
    from karp_models.models.registry import build
    from karp_models.train.checkpoints import CheckpointError, checkpoint_parts, write_checkpoint

    tensors, meta = checkpoint_parts(build("fast"), model_name="fast", meta={"timelapse": {"steps": [0]}})
    tensors["timelapse/zero/w"] = torch.zeros(2)
    p = write_checkpoint(tmp_path / "forged.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="time-lapse that cannot be read"):
        tl.load(p)


# --- continued runs: the grid goes on


def _uninterrupted(every: int, end: int, max_items: int) -> tl.TimeLapse:
    lapse = tl.TimeLapse(every=every, max_items=max_items)
    for step in range(0, end, every):
        lapse.offer(step, _model(step))
    lapse.offer(end, _model(end), last=True)
    return lapse


@pytest.mark.parametrize("saved_stride", [True, False])     # False: a file from before strides were saved
@pytest.mark.parametrize("split", [0, 5, 35, 37, 80, 103, 160])
def test_a_run_continued_anywhere_keeps_the_steps_of_one_run(split, saved_stride):
    """Stopped at `split` (the last snapshot there, on the grid or not), saved, continued to 203:
    the same steps and weights as one run from 0 to 203."""
    every, end, n = 5, 203, 5
    first = _uninterrupted(every, split, n) if split else tl.TimeLapse(every=every, max_items=n)
    if not split:
        first.offer(0, _model(0), last=True)
    items, meta = tl.tensors(first)
    stride = meta["stride"] if saved_stride else None
    lapse = tl.TimeLapse.resume(list(first.items), every, n, stride)
    assert not lapse.offer(split, _model(-1), last=True)        # the continued run's first preview
    for step in range(split - split % every + every, end, every):  # its previews: on the 5-grid again
        lapse.offer(step, _model(step))
    lapse.offer(end, _model(end), last=True)
    one = _uninterrupted(every, end, n)
    assert lapse.steps == one.steps and lapse.stride == one.stride
    assert [float(sd["weight"][0, 0]) for _s, sd in lapse.items] == lapse.steps


def test_a_continued_run_with_a_longer_preview_interval_stays_on_a_common_grid():
    first = _uninterrupted(every=10, end=50, max_items=12)     # steps 0..50 every 10, stride 10
    lapse = tl.TimeLapse.resume(list(first.items), every=25, max_items=12, stride=first.stride)
    assert lapse.stride == 50 and lapse.steps == [0, 50]       # lcm(10, 25): 10, 20, ... are off it
    for step in (75, 100, 125, 150):
        lapse.offer(step, _model(step))
    assert lapse.steps == [0, 50, 100, 150]


# --- text models, continued and recovered runs, through the job queue


def _text_spec(steps: int, **kw) -> RunSpec:
    cfg = TrainConfig(steps=steps, batch_size=8, eval_every=0, eval_batches=1)
    return RunSpec(model=kw.pop("model", "gpt"), dataset="names", preset=kw.pop("preset", "nano"),
                   config=cfg, preview_every=10, device="cpu", **kw)


def _same(a, b) -> bool:
    return all(sa == sb and sda.keys() == sdb.keys() and all(torch.equal(sda[k], sdb[k]) for k in sda)
               for (sa, sda), (sb, sdb) in zip(a, b, strict=True))


@pytest.mark.parametrize("model,preset", [("gpt", "nano"), ("lstm", "tiny")])
def test_a_text_run_keeps_snapshots_at_its_previews(tmp_path, model, preset):
    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False)
    threads = torch.get_num_threads()
    try:
        jid = m.submit("s1", _text_spec(35, model=model, preset=preset))
        st = m.wait(jid, timeout=60)
        assert st.state == "done", st.error
        # previews every 10 steps and the last: 0, 10, 20, 30 on the grid, 35 where it ended
        assert [s for s, _ in st.timelapse] == [0, 10, 20, 30, 35]
        assert st.model_config is not None and st.model_config["n_layer"] >= 1
        path = m.save(jid, "text-lapse")
        job_items = list(m._jobs[jid].timelapse.items)
    finally:
        m.shutdown()
        torch.set_num_threads(threads)
    loaded = tl.load(path)
    assert _same(loaded, job_items)
    assert not torch.equal(*(next(v for k, v in sd.items() if k.endswith("weight")) for _s, sd in (loaded[0], loaded[-1])))


def test_a_continued_text_run_keeps_the_earlier_snapshots_and_counts_on(tmp_path):
    from karp_models.train.runs import spec_from_run

    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False)
    threads = torch.get_num_threads()
    try:
        jid = m.submit("s1", _text_spec(35))
        assert m.wait(jid, timeout=60).state == "done"
        path = m.save(jid, "first")
        earlier = tl.load(path)
        # the same preview interval as the first run (the app's: the task's own)
        jid2 = m.submit("s1", dataclasses.replace(spec_from_run(path, steps=80), preview_every=10))
        st = m.wait(jid2, timeout=60)
        assert st.state == "done", st.error
        # 35 was where the first run ended, not this one's end: the grid goes on from 40
        assert [s for s, _ in st.timelapse] == [0, 10, 20, 30, 40, 50, 60, 70, 80]
        assert _same(list(st.timelapse)[:4], earlier[:4])       # the very same weights
        again = tl.load(m.save(jid2, "continued"))
    finally:
        m.shutdown()
        torch.set_num_threads(threads)
    assert [s for s, _ in again] == [0, 10, 20, 30, 40, 50, 60, 70, 80] and _same(again[:4], earlier[:4])


def test_a_recovered_run_keeps_its_snapshots(tmp_path):
    """Stopped mid-run with an autosave, the server restarted: the recovered run, resumed, goes on
    from the snapshots it had; one found finished and saved without resuming keeps them too."""
    import time

    root = tmp_path / "runs"
    m = JobManager(runs_dir=root, set_threads=False, autosave_steps=20)
    threads = torch.get_num_threads()
    try:
        jid = m.submit("s1", _text_spec(600))
        t0 = time.monotonic()
        while m.status(jid).step < 30 and m.status(jid).active:
            assert time.monotonic() - t0 < 60
            time.sleep(0.005)
        m.stop(jid, wait=True)
        st = m.status(jid)
        assert st.state == "stopped" and 30 <= st.step < 600
        before = list(st.timelapse)
        on_grid = [s for s, _ in before if s % 10 == 0]
        assert on_grid == list(range(0, st.step + 1, 10))[:len(on_grid)] and len(on_grid) >= 4
        done = m.submit("s1", _text_spec(35))
        assert m.wait(done, timeout=60).state == "done"
        done_items = list(m.status(done).timelapse)
    finally:
        m.shutdown()

    m = JobManager(runs_dir=root, set_threads=False, autosave_steps=20)   # the restarted server
    try:
        assert sorted(m.recover()) == sorted([jid, done])
        saved = tl.load(m.save(done, "found-finished"))                 # not resumed: read back
        assert _same(saved, done_items)
        m.resume(jid, owner="s1")
        st = m.wait(jid, timeout=120)
        assert st.state == "done", st.error
        steps = [s for s, _ in st.timelapse]
        assert steps == _uninterrupted(10, 600, m._jobs[jid].timelapse.max_items).steps  # as one run
        kept = [it for it in before if it[0] in steps]
        assert kept and _same(kept, [it for it in st.timelapse if it[0] in dict(kept)])
    finally:
        m.shutdown()
        torch.set_num_threads(threads)
